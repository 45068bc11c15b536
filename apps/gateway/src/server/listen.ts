import type { Server } from 'node:net';

/** Binds `server` to host:port; rejects with the bind error (EADDRINUSE, EACCES) instead of emitting it. */
export function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
