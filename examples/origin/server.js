// A minimal "framework origin" for pass mode, Node.js standard library only.
//
// nginx (edge_orch_pass @origin) fetches the page's data in parallel and
// forwards the request here with the assembled JSON document:
//   - in the X-Edge-Orch-Payload header, base64-encoded, when it is small;
//   - otherwise as a POST body, with the client's method in
//     X-Edge-Orch-Method.
// The page is rendered from that document: no API calls of its own, which
// is what a Next.js/Nuxt/SvelteKit loader does when it finds the payload.
//
// Usage: node server.js [port]   (listens on 127.0.0.1 only)
//
// One line per request on stdout: how the payload arrived, its size and
// a hash of it (examples/demo.sh compares it with the JSON page).

'use strict';

const crypto = require('crypto');
const http = require('http');

const port = Number(process.argv[2] || process.env.PORT || 18200);

function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({
        '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'
    })[c]);
}

// the payload's raw bytes: decoded from the header, or the POST body
function payloadBytes(req, body) {
    const header = req.headers['x-edge-orch-payload'];

    if (header) {
        return Buffer.from(header, 'base64');
    }

    if (body.length) {
        return body;
    }

    return null;
}

function render(data, via) {
    const cms = data.cms || {};
    const articles = Array.isArray(cms.articles) ? cms.articles : [];
    const recs = (data.recs && Array.isArray(data.recs.items))
        ? data.recs.items : [];
    const ads = (data.ads && Array.isArray(data.ads.slots))
        ? data.ads.slots : [];

    const title = cms.edition_name || cms.edition || 'News';
    const servedBy = ['cms', 'recs', 'ads']
        .map((k) => data[k] && data[k].served_by)
        .filter(Boolean).join(', ') || '?';

    const list = articles.slice(0, 5).map((a) =>
        `    <li>${escapeHtml(a.headline || a.title || a.id)}</li>`).join('\n');

    return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
  <h1>${escapeHtml(title)}</h1>
  <p>rendered from the edge payload (${via}); served by ${escapeHtml(servedBy)}</p>
  <ol>
${list}
  </ol>
  <p>${recs.length} recommendations, ${ads.length} ad slots</p>
</body>
</html>
`;
}

const server = http.createServer((req, res) => {
    const chunks = [];

    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        const header = req.headers['x-edge-orch-payload'];
        const raw = payloadBytes(req, Buffer.concat(chunks));
        const what = `${req.method} ${req.url}`;
        let data;

        if (raw === null) {
            /* no edge in front: a real framework would fetch the APIs */
            log(`${what}: no payload`);
            res.writeHead(200, { 'Content-Type': 'text/plain' });
            res.end('no edge payload; a framework would call its APIs now\n');
            return;
        }

        try {
            data = JSON.parse(raw.toString('utf8'));
            if (data === null || typeof data !== 'object') {
                throw new Error('not a JSON object');
            }
        } catch (e) {
            log(`${what}: bad payload (${e.message})`);
            res.writeHead(400, { 'Content-Type': 'text/plain' });
            res.end(`bad payload: ${e.message}\n`);
            return;
        }

        const via = header
            ? 'header' : `body, client method ${req.headers['x-edge-orch-method']}`;
        const html = render(data, via);
        const sha = crypto.createHash('sha256').update(raw).digest('hex');

        log(`${what}: payload via=${header ? 'header' : 'body'}`
            + ` json=${raw.length}`
            + (header ? ` base64=${header.length}`
                      : ` method=${req.headers['x-edge-orch-method']}`)
            + ` sha256=${sha.slice(0, 16)}`
            + ` fragments=${Object.keys(data).join(',')}`
            + ` html=${Buffer.byteLength(html)}`);
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(html);
    });
});

function log(line) {
    process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`origin listening on 127.0.0.1:${port}\n`);
});
