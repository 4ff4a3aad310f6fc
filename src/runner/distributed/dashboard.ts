// `megapairs dashboard`: bull-board (a web UI over BullMQ queues: jobs per state, their data,
// results, errors and logs; retry, promote) for the queues of the config's run.
//
// It lets no one in by default: it listens on 127.0.0.1 (reach it with ssh -L or kubectl
// port-forward) and is read-only, with every request that is not a GET or HEAD refused. Only when
// $MEGAPAIRS_DASHBOARD_TOKEN is set does it offer control (retry, clean, pause, add), and then
// every request, reads included, must present the token: an `Authorization: Bearer <token>`
// header, or the cookie that POST /login (a form at /login) sets. A board bound to any other
// address needs the token.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type NextFunction, type Request, type Response } from 'express';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../../config/schema.ts';
import { connectRedis } from './connection.ts';
import { RunQueues } from './queues.ts';
import { DASHBOARD_TOKEN_ENV } from '../../secrets/redact.ts';

export { DASHBOARD_TOKEN_ENV };
const COOKIE = 'megapairs_dashboard';

export interface Dashboard {
  port: number;
  /** Whether it takes actions (a token is set) or only shows. */
  readOnly: boolean;
  close(): Promise<void>;
}

export const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\./.test(host);

/** The cookie's value: derived from the token, so the cookie never holds the token itself. */
const sessionOf = (token: string) => createHmac('sha256', token).update('megapairs-dashboard-session').digest('hex');

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

const LOGIN_PAGE = `<!doctype html><meta charset="utf-8"><title>megapairs dashboard</title>
<form method="post" action="login"><label>Token <input type="password" name="token" autofocus></label> <button>Sign in</button></form>`;

/** Everything behind the token: a bearer header or the login cookie; /login itself is open. */
function requireToken(token: string) {
  const session = sessionOf(token);
  const router = express.Router();
  router.get('/login', (_req, res) => void res.type('html').send(LOGIN_PAGE));
  router.post('/login', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    const given = typeof req.body?.token === 'string' ? req.body.token : '';
    if (!same(given, token)) return void res.status(401).type('html').send(LOGIN_PAGE);
    res.setHeader('Set-Cookie', `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`);
    res.redirect(303, './');
  });
  router.use((req: Request, res: Response, next: NextFunction) => {
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if ((bearer && same(bearer, token)) || same(cookieOf(req, COOKIE) ?? '', session)) return next();
    if (req.method === 'GET' && req.accepts('html') && !req.path.startsWith('/api/')) return void res.redirect(303, 'login');
    res.status(401).type('text').send(`the dashboard needs its token (${DASHBOARD_TOKEN_ENV}): Authorization: Bearer <token>, or sign in at /login\n`);
  });
  return router;
}

/** Without a token nothing changes the run: only GET and HEAD pass (bull-board's own read-only mode hides the buttons). */
function readOnly(req: Request, res: Response, next: NextFunction): void {
  if (req.method === 'GET' || req.method === 'HEAD') return next();
  res.status(403).type('text').send(`read-only: set ${DASHBOARD_TOKEN_ENV} to allow actions\n`);
}

/** Serves the run's queues on `host`:`port` (0: any free port) at /. */
export async function serveDashboard(
  config: Config,
  port: number,
  host = '127.0.0.1',
  token = process.env[DASHBOARD_TOKEN_ENV] || undefined,
): Promise<Dashboard> {
  if (!token && !isLoopback(host))
    throw new Error(`a dashboard on ${host} is open to anyone who reaches it: set ${DASHBOARD_TOKEN_ENV}, or keep it on 127.0.0.1 and port-forward`);
  const connection = await connectRedis(config, 'megapairs-dashboard');
  const rq = new RunQueues(config, connection, { readOnly: !token });
  const adapter = new ExpressAdapter();
  adapter.setBasePath('/');
  createBullBoard({
    queues: rq.all().map(({ queue }) => new BullMQAdapter(queue, { prefix: '', readOnlyMode: !token })),
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: `megapairs ${config.run.name}` } },
  });
  const app = express();
  app.disable('x-powered-by');
  app.use('/', token ? requireToken(token) : readOnly);
  app.use('/', adapter.getRouter());
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  return {
    port: (server.address() as AddressInfo).port,
    readOnly: !token,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rq.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
