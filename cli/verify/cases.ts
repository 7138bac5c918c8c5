// The golden cases `gramhd verify` can run, by their name in manifest.json.
import type { CaseRunner } from './compare.ts';
import { discCase } from './disc-case.ts';
import { evalCases } from './eval-cases.ts';
import { gramCase } from './gram-case.ts';
import { gramhdCase } from './gramhd-case.ts';
import { opsCase } from './ops-case.ts';
import { trainCase } from './train-case.ts';

export const verifyCases: ReadonlyMap<string, CaseRunner> = new Map([
  ['ops', opsCase],
  ['gram_small', gramCase],
  ['disc_small', discCase],
  ['gramhd_small', gramhdCase],
  ['train_gram', trainCase],
  ['train_gramhd', trainCase],
  ...evalCases,
]);
