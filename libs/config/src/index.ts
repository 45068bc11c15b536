export {
  ClusterConfig,
  ConsensusConfig,
  GatewayConfig,
  GatewayMemberConfig,
  ListenerTlsConfig,
  MemberConfig,
  ProcessMemberConfig,
  NatsConfig,
  StorageConfig,
} from './schema';
export { ConfigError, loadClusterConfig, parseClusterConfig, roleOf } from './load';
