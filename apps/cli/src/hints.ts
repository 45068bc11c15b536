import { isTlsSetupError } from './exit-codes';
import { formatAddress, type GatewayAddress } from './gateway';

/** What an error's explanation may name: the endpoints the command used and its `--timeout`. */
export interface HintContext {
  endpoints: GatewayAddress[];
  timeoutMs: number;
}

const START_HINT = 'is the cluster running? `npm start` starts one (else point --endpoints or $CAIRN_ENDPOINTS at a running gateway)';

type Coded = { code?: unknown; message?: unknown };

function codeOf(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as Coded).code === 'string' ? ((err as Coded).code as string) : '';
}

/**
 * The line `cairn` prints for an error of the cluster connection: what failed, then after ` — `
 * what to check. Null for errors that explain themselves (usage, not found, verify...), which are
 * printed as they are. E.g. ECONNREFUSED from every endpoint gives
 * `no gateway at 127.0.0.1:7380 (connection refused) — is the cluster running? ...`.
 */
export function explainError(err: unknown, c: HintContext): string | null {
  const at = c.endpoints.map(formatAddress).join(', ');
  const msg = typeof (err as Coded)?.message === 'string' ? ((err as Coded).message as string) : String(err);
  if (isTlsSetupError(err)) return tlsHint(codeOf(err), msg, at);
  switch (codeOf(err)) {
    case 'ECONNREFUSED':
      return `no gateway at ${at} (connection refused) — ${START_HINT}`;
    case 'NO_GATEWAY':
      return `no gateway at ${at} is reachable (${msg}) — ${START_HINT}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host of ${at} (${codeOf(err)}) — check the address in --endpoints / --gateway / $CAIRN_ENDPOINTS`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach ${at} (${codeOf(err)}) — check the address and the network`;
    case 'ECONNRESET':
    case 'EPIPE':
    case 'CONNECTION_CLOSED':
      return `${msg} — the gateway closed the connection: is it restarting? \`cairn status\` shows the cluster (or does its door speak TLS? then add --tls / --cacert)`;
    case 'TIMEOUT':
    case 'ETIMEDOUT':
      return `${msg} — no answer within --timeout ${c.timeoutMs} ms: check \`cairn status\` (is there a leader?), or raise --timeout`;
    case 'UNAVAILABLE':
      return `${msg} — the cluster could not serve it in time (no leader, or no live storage node): \`cairn status\` shows which processes are down`;
    case 'TOO_LARGE':
      return `${msg} — keys and values are bounded by the cluster config (gateway.keyBytesMax, gateway.valueBytesMax)`;
    default:
      return null;
  }
}

/** What to check after a failed TLS handshake (docs/security.md). */
function tlsHint(code: string, msg: string, at: string): string {
  if (/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|BAD_CERTIFICATE|UNKNOWN_CA/.test(code)) return `TLS to ${at} refused (${msg}) — the gateway wants a client certificate its CA signed: give --cert and --key`;
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH/.test(code)) return `TLS to ${at} failed (${msg}) — is that door plain TCP? then drop --tls / --cacert`;
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/.test(code)) return `TLS to ${at} failed (${msg}) — no TLS version both sides accept (the door's minVersion)`;
  return `the certificate of ${at} is not trusted (${msg}) — give --cacert with the CA that signed it (and connect by a name or address its certificate lists)`;
}
