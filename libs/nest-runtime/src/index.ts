export { parseProcessArgs, type ProcessArgs, type ProcessRole } from './process-args';
export { CairnProcessModule, CLUSTER_CONFIG, LOGGER, NATS, NATS_CONTROL, PROCESS_ID, SUBJECTS } from './process.module';
export { runProcess, type RunOptions } from './bootstrap';
export { COMPONENT, componentModule, processWorld, type ProcessComponent, type ProcessDeps, type ProcessWorld } from './component.module';
export { MetricsServer, countedCounter, readGauge, withMetricsServer, type MetricsServerOptions, type ReadinessCheck } from './metrics-server';
export { httpGet, parsePrometheusText, scrapeMetrics } from './prometheus-text';
export { nestLogger } from './nest-logger';
export {
  ControlPlaneClient,
  ControlPlaneServer,
  RawReplyDeserializer,
  RawReplySerializer,
  RawRequestDeserializer,
  RawRequestSerializer,
  controlErrorReply,
  controlPlaneTransport,
  listenControlPlane,
  type RawNatsRecord,
} from './control-plane';
export { BufferReclaimPolicy, BufferReclaimer, exposedCompactingGc, exposedGc } from './buffer-reclaimer';
