export {
  ClusterConfig,
  ConsensusConfig,
  GatewayConfig,
  GatewayMemberConfig,
  MemberConfig,
  ProcessMemberConfig,
  NatsConfig,
  StorageConfig,
} from './schema';
export { ConfigError, loadClusterConfig, parseClusterConfig, roleOf } from './load';
