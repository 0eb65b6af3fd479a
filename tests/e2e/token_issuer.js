#!/usr/bin/env node
// Test-only token issuer for the Docker Registry token authentication
// protocol (https://distribution.github.io/distribution/spec/auth/token/),
// used by tests/e2e/token_auth.sh.  Node.js built-ins only (http, crypto).
// It listens on 127.0.0.1 only.  NOT for production use: the passwords are
// kept in plain text in the users file.
//
// Modes:
//
//   serve (default)
//     node token_issuer.js --port P --key key.pem --alg RS256|ES256
//          --issuer ISS --service SVC --users users.json
//          [--kid KID | --no-kid] [--x5c chain.pem] [--ttl SECONDS]
//     GET  /token?service=SVC&scope=repository:NAME:pull,push&scope=...&account=USER
//          with optional Basic authentication (no Authorization = anonymous);
//     POST /token (OAuth2 form: grant_type=password, username, password,
//          service, scope, client_id) for clients that insist on it.
//     Answers {"token","access_token","expires_in","issued_at"}; a wrong
//     password or an unknown user gets 401.  The granted access is, per
//     requested scope, the intersection of the requested actions and those
//     the users file allows.  Prints "listening on http://127.0.0.1:P" on
//     stdout when ready, and one JSON line per request on stderr (never a
//     password).  GET /healthz answers 200 "ok".
//
//   mint
//     node token_issuer.js --mint --key key.pem --alg RS256|ES256|HS256|none
//          [--issuer ISS] [--service SVC] [--claims JSON] [--header JSON]
//          [--access JSON] [--kid KID | --no-kid] [--x5c chain.pem] [--ttl S]
//     Prints one JWT.  Default claims: iss, aud, sub "e2e", iat = nbf = now,
//     exp = now + ttl (300), jti random, access [] (or --access).  --claims is
//     merged over them (a null value removes the claim); --header likewise
//     over the JWS header.  HS256 uses the raw bytes of the --key file as the
//     HMAC secret (the classic "public key as HMAC secret" confusion attack);
//     "none" produces an unsigned token with an empty signature.
//
//   jwks
//     node token_issuer.js --jwks key-or-cert.pem... [--kid KID]
//     Prints a JSON Web Key Set with the public keys of the files (kid: the
//     libtrust fingerprint, or --kid for a single file).
//
//   kid
//     node token_issuer.js --print-kid key-or-cert.pem
//
// The default kid is the libtrust key ID of the public key (what
// docker/distribution's registry:2 looks tokens' keys up by), so the same
// tokens work against registry:2.
//
// users.json:
//   {"users": {"alice": {"password": "pw",
//                        "grants": [{"pattern": "**", "actions": ["pull", "push", "delete"]},
//                                   {"type": "registry", "pattern": "catalog", "actions": ["*"]}]}},
//    "anonymous": [{"pattern": "public/**", "actions": ["pull"]}]}
// "type" defaults to "repository".  Patterns: "*" matches within one path
// component, "**" across components.  Action "*" allows every action.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

function die(msg) {
    process.stderr.write(`token_issuer: ${msg}\n`);
    process.exit(2);
}

// ------------------------------------------------------------ arguments

function parseArgs(argv) {
    const opts = { positional: [] };
    const flags = new Set(['mint', 'jwks', 'no-kid', 'help']);
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (!a.startsWith('--')) {
            opts.positional.push(a);
            continue;
        }
        let name = a.slice(2);
        let value;
        const eq = name.indexOf('=');
        if (eq >= 0) {
            value = name.slice(eq + 1);
            name = name.slice(0, eq);
        } else if (flags.has(name)) {
            value = true;
        } else {
            if (i + 1 >= argv.length) die(`--${name} needs a value`);
            value = argv[++i];
        }
        opts[name] = value;
    }
    return opts;
}

// ------------------------------------------------------------ encoding helpers

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function base32(buf) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    let bits = 0;
    let value = 0;
    let out = '';
    for (const byte of buf) {
        value = (value << 8) | byte;
        bits += 8;
        while (bits >= 5) {
            out += alphabet[(value >>> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
    return out;
}

function readPem(file) {
    try {
        return fs.readFileSync(file);
    } catch (e) {
        die(`cannot read ${file}: ${e.message}`);
    }
}

// publicKeyOf: the public KeyObject of a PEM file holding a private key, a
// public key or a certificate (the first one in the file).
function publicKeyOf(file) {
    const pem = readPem(file).toString();
    if (pem.includes('BEGIN CERTIFICATE')) {
        return new crypto.X509Certificate(pem).publicKey;
    }
    return crypto.createPublicKey(pem);
}

// libtrustKid: docker/libtrust's key ID: SHA-256 of the DER
// SubjectPublicKeyInfo, first 240 bits, base32, in 12 groups of 4 joined by ':'.
function libtrustKid(pub) {
    const der = pub.export({ type: 'spki', format: 'der' });
    const h = crypto.createHash('sha256').update(der).digest().subarray(0, 30);
    return base32(h).match(/.{4}/g).join(':');
}

// x5cChain: base64 (not url) DER of every certificate in a PEM file, leaf first.
function x5cChain(file) {
    const pem = readPem(file).toString();
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    if (!blocks) die(`no certificate in ${file}`);
    return blocks.map((b) => new crypto.X509Certificate(b).raw.toString('base64'));
}

// ------------------------------------------------------------ signing

function makeSigner(opts) {
    const alg = opts.alg || 'RS256';
    const keyFile = opts.key;
    if (alg === 'none') return { alg, sign: () => Buffer.alloc(0), kid: null };
    if (!keyFile) die('--key is required');
    if (alg === 'HS256') {
        const secret = readPem(keyFile);
        return {
            alg,
            kid: null,
            sign: (data) => crypto.createHmac('sha256', secret).update(data).digest(),
        };
    }
    const priv = crypto.createPrivateKey(readPem(keyFile));
    const type = priv.asymmetricKeyType;
    if (alg === 'RS256') {
        if (type !== 'rsa') die(`RS256 needs an RSA key, ${keyFile} is ${type}`);
        return {
            alg,
            kid: libtrustKid(crypto.createPublicKey(priv)),
            sign: (data) => crypto.sign('sha256', data, { key: priv, padding: crypto.constants.RSA_PKCS1_PADDING }),
        };
    }
    if (alg === 'ES256') {
        if (type !== 'ec' || priv.asymmetricKeyDetails.namedCurve !== 'prime256v1') {
            die(`ES256 needs an EC P-256 key, ${keyFile} is ${type} ${JSON.stringify(priv.asymmetricKeyDetails)}`);
        }
        return {
            alg,
            kid: libtrustKid(crypto.createPublicKey(priv)),
            sign: (data) => crypto.sign('sha256', data, { key: priv, dsaEncoding: 'ieee-p1363' }),
        };
    }
    die(`unsupported --alg ${alg} (RS256, ES256, HS256, none)`);
}

function jwsHeader(signer, opts) {
    const header = { typ: 'JWT', alg: signer.alg };
    if (!opts['no-kid']) {
        const kid = opts.kid !== undefined ? opts.kid : signer.kid;
        if (kid) header.kid = kid;
    }
    if (opts.x5c) header.x5c = x5cChain(opts.x5c);
    return header;
}

function encodeJwt(header, claims, signer) {
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(signer.sign(Buffer.from(input)))}`;
}

function mergeOver(base, overlay) {
    const out = { ...base };
    for (const [k, v] of Object.entries(overlay || {})) {
        if (v === null) delete out[k];
        else out[k] = v;
    }
    return out;
}

function parseJsonOpt(opts, name) {
    if (opts[name] === undefined) return undefined;
    try {
        return JSON.parse(opts[name]);
    } catch (e) {
        die(`--${name} is not valid JSON: ${e.message}`);
    }
}

function baseClaims(opts, sub, access) {
    const now = Math.floor(Date.now() / 1000);
    const ttl = Number(opts.ttl || 300);
    const claims = {
        iss: opts.issuer || 'test-issuer',
        sub,
        aud: opts.service || 'regfs-test',
        exp: now + ttl,
        nbf: now,
        iat: now,
        jti: crypto.randomBytes(12).toString('hex'),
        access,
    };
    return claims;
}

// ------------------------------------------------------------ policy

function globToRegExp(pattern) {
    let re = '';
    for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i];
        if (c === '*') {
            if (pattern[i + 1] === '*') {
                re += '.*';
                i++;
            } else {
                re += '[^/]*';
            }
        } else {
            re += c.replace(/[\\^$.|?+()[\]{}]/g, '\\$&');
        }
    }
    return new RegExp(`^${re}$`);
}

function allowedActions(grants, type, name) {
    const allowed = new Set();
    for (const g of grants || []) {
        if ((g.type || 'repository') !== type) continue;
        if (!globToRegExp(g.pattern).test(name)) continue;
        for (const a of g.actions || []) allowed.add(a);
    }
    return allowed;
}

// parseScope "repository:team/app:pull,push" -> {type, name, actions}
// (the name may itself contain ':' e.g. a host:port prefix, so split at the
// first and the last ':').
function parseScope(s) {
    const first = s.indexOf(':');
    const last = s.lastIndexOf(':');
    if (first < 0 || last === first) return null;
    let type = s.slice(0, first);
    type = type.replace(/\(.*\)$/, ''); // "repository(plugin)" -> "repository"
    return {
        type,
        name: s.slice(first + 1, last),
        actions: s.slice(last + 1).split(',').filter((a) => a !== ''),
    };
}

function grantAccess(grants, scopes) {
    const byResource = new Map();
    for (const raw of scopes) {
        const sc = parseScope(raw);
        if (!sc) continue;
        const allowed = allowedActions(grants, sc.type, sc.name);
        const granted = sc.actions.filter((a) => allowed.has('*') || allowed.has(a));
        if (granted.length === 0) continue;
        const key = `${sc.type}\u0000${sc.name}`;
        if (!byResource.has(key)) byResource.set(key, { type: sc.type, name: sc.name, actions: [] });
        const entry = byResource.get(key);
        for (const a of granted) if (!entry.actions.includes(a)) entry.actions.push(a);
    }
    return [...byResource.values()];
}

// ------------------------------------------------------------ server

function serve(opts) {
    for (const req of ['port', 'key', 'users']) if (!opts[req]) die(`--${req} is required`);
    const signer = makeSigner(opts);
    if (signer.alg !== 'RS256' && signer.alg !== 'ES256') die('serve mode signs with RS256 or ES256 only');
    const header = jwsHeader(signer, opts);
    const ttl = Number(opts.ttl || 300);
    const service = opts.service || 'regfs-test';
    const loadUsers = () => JSON.parse(fs.readFileSync(opts.users, 'utf8'));
    loadUsers(); // fail early on a bad file; re-read per request so tests can edit it

    const logLine = (obj) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...obj })}\n`);

    function reply(res, status, body, extraHeaders = {}) {
        const data = JSON.stringify(body);
        res.writeHead(status, {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(data),
            ...extraHeaders,
        });
        res.end(data);
    }

    function unauthorized(res, message) {
        reply(res, 401, { errors: [{ code: 'UNAUTHORIZED', message }] }, {
            'WWW-Authenticate': 'Basic realm="regfs-e2e-token-issuer"',
        });
    }

    function handleToken(req, res, params, creds) {
        const users = loadUsers();
        const log = { method: req.method, account: params.get('account') || undefined };
        const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
        log.scopes = scopes;
        const reqService = params.get('service');
        if (reqService && reqService !== service) {
            log.status = 400;
            logLine(log);
            return reply(res, 400, { errors: [{ code: 'INVALID_REQUEST', message: `unknown service ${reqService}` }] });
        }
        let subject = '';
        let grants;
        if (creds) {
            const u = (users.users || {})[creds.user];
            log.user = creds.user;
            if (!u || typeof u.password !== 'string' ||
                !crypto.timingSafeEqual(
                    crypto.createHash('sha256').update(u.password).digest(),
                    crypto.createHash('sha256').update(creds.password).digest())) {
                log.status = 401;
                logLine(log);
                return unauthorized(res, 'wrong user name or password');
            }
            subject = creds.user;
            grants = u.grants || [];
        } else {
            grants = users.anonymous || [];
        }
        const access = grantAccess(grants, scopes);
        const claims = baseClaims({ ...opts, ttl }, subject, access);
        const token = encodeJwt(header, claims, signer);
        log.status = 200;
        log.granted = access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`);
        logLine(log);
        const body = {
            token,
            access_token: token,
            expires_in: ttl,
            issued_at: new Date(claims.iat * 1000).toISOString(),
        };
        if (req.method === 'POST') body.scope = scopes.join(' ');
        return reply(res, 200, body);
    }

    function basicCreds(req) {
        const h = req.headers.authorization;
        if (!h) return null;
        const m = /^Basic\s+(\S+)$/i.exec(h);
        if (!m) return { user: '', password: '', bad: true };
        const dec = Buffer.from(m[1], 'base64').toString('utf8');
        const colon = dec.indexOf(':');
        if (colon < 0) return { user: dec, password: '', bad: true };
        return { user: dec.slice(0, colon), password: dec.slice(colon + 1) };
    }

    const server = http.createServer((req, res) => {
        const url = new URL(req.url, 'http://127.0.0.1');
        if (url.pathname === '/healthz') {
            res.writeHead(200, { 'Content-Type': 'text/plain' });
            return res.end('ok');
        }
        if (url.pathname !== '/token') {
            return reply(res, 404, { errors: [{ code: 'NOT_FOUND', message: url.pathname }] });
        }
        if (req.method === 'GET') {
            const creds = basicCreds(req);
            if (creds && creds.bad) return unauthorized(res, 'malformed Authorization header');
            return handleToken(req, res, url.searchParams, creds);
        }
        if (req.method === 'POST') {
            let body = '';
            req.setEncoding('utf8');
            req.on('data', (d) => {
                body += d;
                if (body.length > 65536) req.destroy();
            });
            req.on('end', () => {
                const params = new URLSearchParams(body);
                const grant = params.get('grant_type');
                if (grant !== 'password') {
                    // No refresh tokens are ever issued.
                    logLine({ method: 'POST', grant_type: grant, status: 400 });
                    return reply(res, 400, { error: 'unsupported_grant_type' });
                }
                return handleToken(req, res, params, {
                    user: params.get('username') || '',
                    password: params.get('password') || '',
                });
            });
            return undefined;
        }
        return reply(res, 405, { errors: [{ code: 'UNSUPPORTED', message: req.method }] });
    });
    server.listen(Number(opts.port), '127.0.0.1', () => {
        process.stdout.write(`listening on http://127.0.0.1:${server.address().port} alg=${signer.alg} kid=${header.kid || ''}\n`);
    });
    const stop = () => {
        server.close(() => process.exit(0));
        if (server.closeAllConnections) server.closeAllConnections(); // idle keep-alive sockets
        setTimeout(() => process.exit(0), 2000).unref();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

// ------------------------------------------------------------ main

function main() {
    const opts = parseArgs(process.argv.slice(2));
    if (opts.help) {
        process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n') + '\n');
        return;
    }
    if (opts.mint) {
        const signer = makeSigner(opts);
        const header = mergeOver(jwsHeader(signer, opts), parseJsonOpt(opts, 'header'));
        const access = parseJsonOpt(opts, 'access') || [];
        const claims = mergeOver(baseClaims(opts, 'e2e', access), parseJsonOpt(opts, 'claims'));
        process.stdout.write(`${encodeJwt(header, claims, signer)}\n`);
        return;
    }
    if (opts.jwks) {
        const files = opts.positional;
        if (files.length === 0) die('--jwks needs at least one PEM file');
        const keys = files.map((f) => {
            const pub = publicKeyOf(f);
            const jwk = pub.export({ format: 'jwk' });
            jwk.kid = files.length === 1 && opts.kid ? opts.kid : libtrustKid(pub);
            jwk.use = 'sig';
            jwk.alg = jwk.kty === 'RSA' ? 'RS256' : 'ES256';
            return jwk;
        });
        process.stdout.write(`${JSON.stringify({ keys }, null, 2)}\n`);
        return;
    }
    if (opts['print-kid']) {
        process.stdout.write(`${libtrustKid(publicKeyOf(opts['print-kid']))}\n`);
        return;
    }
    serve(opts);
}

main();
