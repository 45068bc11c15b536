export {
  APP_OF_ROLE,
  AppNotBuiltError,
  LocalCluster,
  ProcessExitedError,
  REPO_ROOT,
  ReadyTimeoutError,
  STATUS_FRESH_MS,
  STOP_GRACE_MS,
  logTail,
  natsPort,
  type LocalClusterOptions,
  type ProcessExit,
  type ProcessRole,
} from './cluster';
export { LauncherArgsError, parseLauncherArgs, type LauncherArgs } from './args';
