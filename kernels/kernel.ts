// What every kernel generator returns and engine/runtime.ts compiles and dispatches: defined here,
// at the bottom layer, so that kernels/ imports nothing of ours.

/** A compute kernel: WGSL source with entry point `main`, bindings in group 0: uniforms (if any) at
 * binding 0, then the storage buffers in the order the dispatch passes them. The key must identify
 * the source (name + specialisation), never a runtime shape. */
export interface Kernel {
  key: string;
  code: string | (() => string);
}
