// Memory discipline for the renderer's big intermediates. Without autograd recording, a network
// step's temporaries are garbage the moment it returns and are freed then (a GRAM64 image makes
// ~100 MB per FiLM activation); while recording they are the backward pass's saved tensors and must
// live as long as the graph, so they stay in the caller's scope.
import { isGradEnabled, tidy, type Tensor } from '../engine/index.ts';

/** Runs one step of a network in its own tidy scope when nothing is being recorded. */
export function step<T>(fn: () => T): T {
  return isGradEnabled() ? fn() : tidy(fn);
}

/** Frees tensors this code made and no longer needs, when nothing is being recorded. */
export function release(...tensors: (Tensor | null | undefined)[]): void {
  if (isGradEnabled()) return;
  for (const t of tensors) t?.dispose();
}
