// The bench's chat servers, in their own process so that the client's CPU is measured alone.
// Driven over IPC: {start: ServerOptions} -> {urls} (one server per step), {stats} -> counts, {stop}.
import { FakeServer, type ServerOptions } from '../test/chat-server.ts';

let servers: FakeServer[] = [];
process.on('message', async (m: { start?: ServerOptions; stats?: true; stop?: true }) => {
  if (m.start) {
    servers = [new FakeServer(m.start), new FakeServer(m.start)];
    process.send!({ urls: await Promise.all(servers.map((s) => s.start())) });
  } else if (m.stats) {
    process.send!({
      stats: servers.map((s) => {
        const faults = Object.values(s.faultCounts).reduce((a, b) => a + b, 0);
        return { requests: s.requests.length, good: s.requests.length - faults, faults: s.faultCounts, maxBusy: s.maxBusy };
      }),
    });
  } else if (m.stop) {
    await Promise.all(servers.map((s) => s.stop()));
    process.send!({ stopped: true });
  }
});
process.on('disconnect', () => process.exit(0));
