/*
 * ws_node.cjs: the Node `ws` broadcast ceiling for bench/fanout.py. Same
 * commands on stdin as bench_fanout rawlws ("burst N PAD", "quit"), same
 * message shape, t_ns from the monotonic clock (process.hrtime, like
 * CLOCK_MONOTONIC in the C programs). WS_MODULE names the installed `ws`.
 */
'use strict';
const { WebSocketServer } = require(process.env.WS_MODULE || 'ws');
const readline = require('readline');

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false,
  handleProtocols: (protos) => (protos.has('rv.v1') ? 'rv.v1' : false) });
let seq = 0;
wss.on('listening', () => console.log(`port ${wss.address().port}`));
wss.on('connection', (ws) => ws.on('message', () => {}));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = /^burst (\d+) ?(\d*)/.exec(line);
  if (line.startsWith('quit')) { wss.close(); process.exit(0); }
  if (!m) { console.log('err unknown command'); return; }
  const n = +m[1], fill = 'x'.repeat(+(m[2] || 0));
  const now = process.hrtime.bigint();
  for (let k = 0; k < n; k++) {
    seq++;
    const msg = `{"type":"alert","seq":${seq},"state":"opened","country":"SY","violation":"killing",` +
      `"admin1":"a${seq % 100}","level":"warning","score":3.5,"opened_at":"2024-03-01T10:00:00Z",` +
      `"updated_at":"2024-03-01T10:00:00Z","evidence":["${fill}"],"t_ns":${now}}`;
    for (const c of wss.clients) c.send(msg);
  }
  console.log('ok');
});
