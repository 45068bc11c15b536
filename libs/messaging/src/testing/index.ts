/**
 * `@cairn/messaging/testing`: a local nats-server for tests, the local dev cluster (tools/cluster)
 * and chaos runs. Not part of the transport: a deployed Cairn connects to a nats-server run as its
 * own service (deploy/), and no process shell imports this entry point.
 */
export { NatsServerMissingError, findNatsServer, freePort, startNatsServer, type NatsServerHandle, type NatsServerOptions } from './nats-server';
export { nextPermissionViolation, startNatsTestBus, type NatsTestBus } from './nats-test-bus';
export { OpensslMissingError, makeTestPki, opensslAvailable, tlsConnected, type TestCert, type TestPki } from './test-pki';
