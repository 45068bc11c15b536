/**
 * @cairn/raft/testing: the deterministic test harness for `@cairn/raft` and its drivers, kept out
 * of the main entry so production code does not pull it in. `Simulator` (an in-memory cluster on
 * one seeded PRNG with faults), `DurableStore` (a node's "disk"), `SafetyChecker` (Raft Figure 3
 * properties), fixtures (`logWithTerms`, `newTestNode`) and the
 * data-driven script interpreter (`runScript`, libs/raft/testdata).
 */
export { DurableStore } from './durable-store';
export { SafetyChecker, SafetyViolationError } from './safety';
export { Simulator, type SimulatorOptions } from './simulator';
export { cycle, logWithTerms, newTestNode } from './fixtures';
export { formatMessage, runScript } from './datadriven';
