import { ProtocolError } from './constants';

/** HELLO reply flag bits (byte 1 of its payload). */
export const HelloFlags = {
  /** Auth is enabled on the cluster: before a successful AUTH only PING, HELLO and AUTH are served. */
  AuthEnabled: 0x01,
  /** This connection has authenticated (as `user`). */
  Authenticated: 0x02,
} as const;

/** Fixed part of the HELLO reply: `u8 protocolVersion | u8 flags | u16 userLength`, bytes. */
export const HELLO_REPLY_HEADER_BYTES = 4;

/** What HELLO answers (docs/protocol.md "HELLO and AUTH"). */
export interface HelloReply {
  /** The protocol version the gateway speaks (PROTOCOL_VERSION). */
  protocolVersion: number;
  authEnabled: boolean;
  /** The user this connection authenticated as; null before any successful AUTH. */
  user: string | null;
}

/**
 * HELLO's OK payload: `u8 protocolVersion | u8 flags (HelloFlags) | u16 userLength | user (UTF-8)`;
 * userLength 0 and no AUTHENTICATED bit when the connection has not authenticated.
 * @throws RangeError when the user name is over 65 535 bytes or the version not a u8.
 */
export function encodeHelloReply(r: HelloReply): Buffer {
  const user = Buffer.from(r.user ?? '', 'utf8');
  if (user.length > 0xffff) throw new RangeError(`HELLO user name of ${user.length} bytes exceeds 65535`);
  if (!Number.isInteger(r.protocolVersion) || r.protocolVersion < 0 || r.protocolVersion > 0xff) throw new RangeError(`protocolVersion must be a u8, got ${r.protocolVersion}`);
  const b = Buffer.alloc(HELLO_REPLY_HEADER_BYTES + user.length);
  b[0] = r.protocolVersion;
  b[1] = (r.authEnabled ? HelloFlags.AuthEnabled : 0) | (r.user !== null ? HelloFlags.Authenticated : 0);
  b.writeUInt16BE(user.length, 2);
  user.copy(b, HELLO_REPLY_HEADER_BYTES);
  return b;
}

/** @throws ProtocolError when the payload is shorter than its header or its user length. Unknown flag bits are ignored. */
export function decodeHelloReply(payload: Uint8Array): HelloReply {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (b.length < HELLO_REPLY_HEADER_BYTES) throw new ProtocolError(`HELLO reply of ${b.length} bytes is shorter than its ${HELLO_REPLY_HEADER_BYTES}-byte header`);
  const userLength = b.readUInt16BE(2);
  if (b.length !== HELLO_REPLY_HEADER_BYTES + userLength) throw new ProtocolError(`HELLO reply of ${b.length} bytes does not match its user length ${userLength}`);
  const authenticated = (b[1] & HelloFlags.Authenticated) !== 0;
  return { protocolVersion: b[0], authEnabled: (b[1] & HelloFlags.AuthEnabled) !== 0, user: authenticated ? b.toString('utf8', HELLO_REPLY_HEADER_BYTES) : null };
}
