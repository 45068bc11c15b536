import type { ClusterConfig } from '@cairn/config';

/**
 * Reads and validates a cluster config file (`loadClusterConfig` of @cairn/config). The library is
 * imported only here, when a command is given `--config`: with class-validator it was about 45 %
 * of the CPU `cairn --version` took to start (0.23 of 0.5 s), and most commands never read a
 * config file. @throws ConfigError when the file is unreadable or invalid
 */
export async function loadConfigFile(path: string): Promise<ClusterConfig> {
  const { loadClusterConfig } = await import('@cairn/config');
  return loadClusterConfig(path);
}
