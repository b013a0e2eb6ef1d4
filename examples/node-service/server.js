// An example service wrapped by aion-exec:
//
//   aion-exec -- node examples/node-service/server.js
//
// Connection details that only change with a move (host, port, database)
// come from the environment (PGHOST, PGPORT, PGDATABASE): aion-exec restarts
// the service when they change. Credentials that rotate (user, password) come
// from the file that AION_DB_CREDENTIALS_FILE names: on SIGHUP the service
// re-reads it and swaps its connection pool without dropping a request.
'use strict';

const fs = require('fs');
const http = require('http');
const { Pool } = require('pg');

const port = Number(process.env.PORT || 8080);
const credFile = process.env.AION_DB_CREDENTIALS_FILE;

function log(msg) {
  process.stdout.write(msg + '\n');
}

function credentials() {
  if (!credFile) {
    return { user: process.env.PGUSER, password: process.env.PGPASSWORD };
  }
  const c = JSON.parse(fs.readFileSync(credFile, 'utf8'));
  return { user: c.username, password: c.password };
}

function newPool() {
  const p = new Pool({
    ...credentials(),
    host: process.env.PGHOST,
    port: Number(process.env.PGPORT || 5432),
    database: process.env.PGDATABASE,
    max: 4,
  });
  p.on('error', (err) => log(`pool error: ${err.message}`));
  return p;
}

let pool = newPool();
let reloads = 0;

process.on('SIGHUP', () => {
  let next;
  try {
    next = newPool();
  } catch (err) {
    log(`reload failed, keeping the old pool: ${err.message}`);
    return;
  }
  const old = pool;
  pool = next;
  reloads++;
  // In-flight queries finish on the old pool; new ones use the new one.
  old.end().catch(() => {});
  log(`reloaded ${reloads}`);
});

const server = http.createServer(async (req, res) => {
  if (req.url === '/health') {
    res.end(JSON.stringify({ pid: process.pid, reloads }));
    return;
  }
  if (req.url === '/db') {
    try {
      const r = await pool.query(
        'select current_database() as database, current_user as "user", inet_server_port() as port',
      );
      res.end(JSON.stringify({ pid: process.pid, reloads, ...r.rows[0] }));
    } catch (err) {
      res.statusCode = 503;
      res.end(JSON.stringify({ pid: process.pid, error: err.message }));
    }
    return;
  }
  res.statusCode = 404;
  res.end('{}');
});

function stop(sig) {
  log(`stopping on ${sig}`);
  server.close();
  pool.end().finally(() => process.exit(0));
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

server.listen(port, '127.0.0.1', () => {
  log(`ready pid=${process.pid} port=${port} db=${process.env.PGHOST}:${process.env.PGPORT}/${process.env.PGDATABASE}`);
});
