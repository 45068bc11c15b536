/** Test helpers of `@cairn/log` (entry `@cairn/log/testing`): not part of the library's API. */
export { VirtualClock } from './virtual-clock';
