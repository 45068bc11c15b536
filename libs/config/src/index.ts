export {
  AuthConfig,
  ClusterConfig,
  ConsensusConfig,
  GatewayConfig,
  GatewayMemberConfig,
  ListenerTlsConfig,
  MemberConfig,
  ProcessMemberConfig,
  NatsConfig,
  NatsCredentialConfig,
  NatsCredentialsConfig,
  NatsTlsConfig,
  StorageConfig,
} from './schema';
export { ConfigError, loadClusterConfig, parseClusterConfig, roleOf } from './load';
