// `megapairs dashboard`: bull-board (a web UI over BullMQ queues: jobs per state, their data,
// results, errors and logs; retry, promote) for the queues of the config's run.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../../config/schema.ts';
import { connectRedis } from './connection.ts';
import { RunQueues } from './queues.ts';

export interface Dashboard {
  port: number;
  close(): Promise<void>;
}

/** Serves the run's queues on `port` (0: any free port) at /. */
export async function serveDashboard(config: Config, port: number, host = '0.0.0.0'): Promise<Dashboard> {
  const connection = await connectRedis(config, 'megapairs-dashboard');
  const rq = new RunQueues(config, connection);
  const adapter = new ExpressAdapter();
  adapter.setBasePath('/');
  createBullBoard({
    queues: rq.all().map(({ queue }) => new BullMQAdapter(queue, { prefix: '' })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: `megapairs ${config.run.name}` } },
  });
  const app = express();
  app.use('/', adapter.getRouter());
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rq.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
