export {
  ClusterConfig,
  ConsensusConfig,
  GatewayConfig,
  GatewayMemberConfig,
  MemberConfig,
  NatsConfig,
  StorageConfig,
} from './schema';
export { ConfigError, loadClusterConfig, parseClusterConfig, roleOf } from './load';
