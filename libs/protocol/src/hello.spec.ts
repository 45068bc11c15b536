import { HelloFlags, ProtocolError, decodeHelloReply, encodeHelloReply } from './index';

describe('HELLO reply', () => {
  it('round-trips with and without a user; the AUTHENTICATED bit follows the user', () => {
    for (const r of [{ protocolVersion: 1, authEnabled: false, user: null }, { protocolVersion: 1, authEnabled: true, user: null }, { protocolVersion: 1, authEnabled: true, user: 'ålice' }]) {
      const b = encodeHelloReply(r);
      expect(decodeHelloReply(b)).toEqual(r);
      expect((b[1] & HelloFlags.Authenticated) !== 0).toBe(r.user !== null);
    }
  });

  it('lays out u8 version | u8 flags | u16 userLength | user', () => {
    expect(encodeHelloReply({ protocolVersion: 1, authEnabled: true, user: 'bob' }).toString('hex')).toBe('01030003626f62');
  });

  it('refuses a short or inconsistent payload', () => {
    expect(() => decodeHelloReply(Buffer.from('0101', 'hex'))).toThrow(ProtocolError);
    expect(() => decodeHelloReply(Buffer.from('0103000562', 'hex'))).toThrow(ProtocolError);
    expect(() => encodeHelloReply({ protocolVersion: 256, authEnabled: false, user: null })).toThrow(RangeError);
  });
});
