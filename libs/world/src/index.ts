/**
 * @cairn/world: what a Cairn process reaches outside itself (time, randomness, the message bus, the disk),
 * as interfaces injected below every process shell, with the production implementations of time
 * and randomness and the simulator's deterministic ones (virtual time on a seeded scheduler, a
 * simulated core-NATS bus with faults). The nats.js implementation of `Transport` is in
 * @cairn/messaging (`natsTransport`).
 */
export { realClock, sleep, type Clock, type TimerHandle, type TimerOptions } from './clock';
export { seededRandom, systemRandom, type Random } from './random';
export { TransportError, isTransportError, type Transport, type TransportErrorCode, type TransportMsg, type TransportSubscription } from './transport';
export { exitProcessOnFatal, realWorld, type World } from './world';
export { Incarnation, SIM_EPOCH_MS, SimScheduler } from './sim/scheduler';
export { DISK_FAULTS_NONE, SimDisk, type DiskFaults, type DiskStats } from './sim/disk';
export { NETWORK_FAULTS_NONE, SimNetwork, type NetworkFaults, type NetworkStats } from './sim/network';
