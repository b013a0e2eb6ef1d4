// A test child in the manner of dumb-init's print_signals.py: it prints
// "ready", then a line for each signal it gets, so tests wait on lines
// instead of sleeping.
//   CHILD_ENV   comma-separated variable names whose values "ready" shows
//   CHILD_FILE  a file whose content each "sighup" line shows
'use strict';
const fs = require('fs');

const out = (s) => process.stdout.write(s + '\n');
const names = (process.env.CHILD_ENV || '').split(',').filter(Boolean);
const env = names.map((n) => `${n}=${JSON.stringify(process.env[n] ?? null)}`).join(' ');
const file = () => (process.env.CHILD_FILE ? JSON.stringify(fs.readFileSync(process.env.CHILD_FILE, 'utf8')) : '""');

let hups = 0;
process.on('SIGHUP', () => out(`sighup n=${++hups} pid=${process.pid} file=${file()}`));
for (const sig of ['SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGWINCH']) {
  process.on(sig, () => out(`signal ${sig} pid=${process.pid}`));
}
process.on('SIGTERM', () => {
  out(`term pid=${process.pid}`);
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
out(`ready pid=${process.pid} ${env}`);
