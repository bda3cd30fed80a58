/**
 * socket: QEMU's unprivileged socket netdev over loopback, the server listening and the client connecting
 * (so the server's QEMU must start first). Needs nothing from the host and leaves nothing behind.
 */
import type { LinkBackend } from './types.js';

export interface SocketLinkState {
  backend: 'socket';
  port: number;
}

export const socketLink: LinkBackend<SocketLinkState, Record<string, never>> = {
  id: 'socket',
  availability: () => ({ ok: true, why: 'socket over loopback (no privileges needed)', options: {} }),
  plan: (p) => ({ backend: 'socket', port: p.port }),
  netdev: (s, role) => ({ type: 'socket', options: [`${role === 'server' ? 'listen' : 'connect'}=127.0.0.1:${s.port}`], queues: 1 }),
  setup: async () => undefined,
  teardown: async () => undefined,
  hostWrapper: () => [],
  sshProxyCommand: () => undefined,
  hostResources: () => [],
  describe: () => 'socket',
};
