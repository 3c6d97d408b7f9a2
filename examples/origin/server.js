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

'use strict';

const http = require('http');

const port = Number(process.argv[2] || process.env.PORT || 18200);

function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({
        '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'
    })[c]);
}

function readPayload(req, body) {
    const header = req.headers['x-edge-orch-payload'];

    if (header) {
        return JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
    }

    if (body.length) {
        return JSON.parse(body.toString('utf8'));
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

    const list = articles.slice(0, 5).map((a) =>
        `    <li>${escapeHtml(a.title || a.id)}</li>`).join('\n');

    return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(cms.edition || 'News')}</title></head>
<body>
  <h1>${escapeHtml(cms.edition || 'News')}</h1>
  <p>rendered from the edge payload (${via}); served by ${escapeHtml(cms.served_by || '?')}</p>
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
        let data;

        try {
            data = readPayload(req, Buffer.concat(chunks));
        } catch (e) {
            res.writeHead(400, { 'Content-Type': 'text/plain' });
            res.end(`bad payload: ${e.message}\n`);
            return;
        }

        if (data === null) {
            /* no edge in front: a real framework would fetch the APIs */
            res.writeHead(200, { 'Content-Type': 'text/plain' });
            res.end('no edge payload; a framework would call its APIs now\n');
            return;
        }

        const via = req.headers['x-edge-orch-payload']
            ? 'header' : `body, client method ${req.headers['x-edge-orch-method']}`;

        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(render(data, via));
    });
});

server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`origin listening on 127.0.0.1:${port}\n`);
});
