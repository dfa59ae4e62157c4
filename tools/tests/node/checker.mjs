// What the SD-JWT checkers share: where the pinned npm packages are, reading the command line
// and the files it names, verifying a JWS signature with Node's crypto against a JWK, the RFC 9901
// disclosure rules the library skips, and the verdict (JSON on stdout and exit 0 when valid;
// the error on stderr and exit 1 when not; exit 2 for a wrong command line).

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import crypto from 'node:crypto';

const HERE = dirname(fileURLToPath(import.meta.url));

// Where `cargo xtask install` put the packages xtask/npm/package-lock.json pins: the folder the
// Rust tests name in JOL_NPM_TOOLS, else target/tools/npm of this checkout.
export const NPM_TOOLS = process.env.JOL_NPM_TOOLS ?? join(HERE, '../../../target/tools/npm');

const requireInstalled = createRequire(join(NPM_TOOLS, 'package.json'));

// A pinned npm package (its CommonJS build, so every package is loaded once, the same way).
export function library(name) {
  try {
    return requireInstalled(name);
  } catch (e) {
    throw new UsageError(`${name} is not installed in ${NPM_TOOLS}: run \`cargo xtask install\` (${e.message})`);
  }
}

// A wrong command line or a missing file: neither valid nor invalid.
export class UsageError extends Error {}

// The options `spec` names (all strings), or a UsageError naming `usage`.
export function options(spec, usage) {
  let values;
  try {
    ({ values } = parseArgs({ options: spec, strict: true }));
  } catch (e) {
    throw new UsageError(`${e.message}\nusage: ${usage}`);
  }
  for (const [name, { required }] of Object.entries(spec)) {
    if (required && values[name] === undefined) {
      throw new UsageError(`--${name} is required\nusage: ${usage}`);
    }
  }
  return values;
}

export function readText(file) {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${e.message}`);
  }
}

export function readJson(file) {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not JSON: ${e.message}`);
  }
}

// The protected header of a compact JWS (or of an SD-JWT's issuer-signed JWT).
export function header(compact) {
  const first = compact.split('.')[0];
  return JSON.parse(Buffer.from(first, 'base64url').toString('utf8'));
}

// Which key type and curve each JWS algorithm takes, and how Node's crypto verifies it.
const ALGORITHMS = {
  Ed25519: { kty: 'OKP', crv: 'Ed25519', digest: null, encoding: undefined },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', digest: null, encoding: undefined },
  ES256: { kty: 'EC', crv: 'P-256', digest: 'sha256', encoding: 'ieee-p1363' },
};

// The library's verifier callback, `(signingInput, signature) => boolean`, checking with Node's
// crypto against `keys` (JWKs): the key is the one the JWS header's `kid` names, or the only
// one when the header names none; its type must fit the header's `alg`, which must be one of
// `algs`. A refusal says why on stderr and returns false (the library then throws).
export function jwsVerifier(keys, algs) {
  return (signingInput, signature) => {
    const { alg, kid } = header(signingInput);
    const refuse = (why) => {
      process.stderr.write(`signature not checked: ${why}\n`);
      return false;
    };
    if (!algs.includes(alg)) return refuse(`alg ${JSON.stringify(alg)} is not one of ${algs.join(', ')}`);
    const found = kid === undefined ? (keys.length === 1 ? keys : []) : keys.filter((k) => k.kid === kid);
    if (found.length !== 1) return refuse(`no single key for kid ${JSON.stringify(kid)} among ${keys.length}`);
    const jwk = found[0];
    const want = ALGORITHMS[alg];
    if (jwk.kty !== want.kty || jwk.crv !== want.crv) {
      return refuse(`alg ${alg} needs a ${want.kty} ${want.crv} key, not ${jwk.kty} ${jwk.crv}`);
    }
    try {
      const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
      return crypto.verify(
        want.digest,
        Buffer.from(signingInput),
        { key, dsaEncoding: want.encoding },
        Buffer.from(signature, 'base64url'),
      );
    } catch (e) {
      return refuse(`Node's crypto: ${e.message}`);
    }
  };
}

// RFC 9901 section 7.1 steps 3 and 4, which @sd-jwt/core does not enforce (it drops a
// disclosure no digest references, which is how an altered disclosure looks): every digest in
// the signed payload appears once; an object's `_sd` digest names a disclosure of a key the
// object does not already have, an array element's `...` digest one of a bare value; and
// every disclosure sent is referenced. `disclosures` are the library's, whose digests it
// computed over their encoding as sent.
export async function checkDisclosureReferences(payload, disclosures, hashAndAlg) {
  const byDigest = new Map();
  for (const d of disclosures) {
    const digest = await d.digest(hashAndAlg);
    if (byDigest.has(digest)) throw new Error(`disclosure ${d.encode()} is sent twice`);
    byDigest.set(digest, d);
  }
  const seen = new Set();
  const reference = (digest, where) => {
    if (typeof digest !== 'string') throw new Error(`a digest at ${where} is not a string`);
    if (seen.has(digest)) throw new Error(`digest ${digest} appears twice in the payload`);
    seen.add(digest);
    return byDigest.get(digest);
  };
  const walk = (value, where) => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        const slot = `${where}[${i}]`;
        const isSlot = item && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length === 1 && '...' in item;
        if (!isSlot) return walk(item, slot);
        const d = reference(item['...'], slot);
        if (d === undefined) return;
        if (d.key !== undefined) throw new Error(`disclosure for ${slot} has a claim name`);
        walk(d.value, slot);
      });
    } else if (value && typeof value === 'object') {
      for (const [name, inner] of Object.entries(value)) {
        if (name !== '_sd') walk(inner, `${where}.${name}`);
      }
      for (const digest of value._sd ?? []) {
        const d = reference(digest, `${where}._sd`);
        if (d === undefined) continue;
        if (d.key === undefined) throw new Error(`disclosure in ${where}._sd has no claim name`);
        if (d.key === '_sd' || d.key === '...' || d.key in value) {
          throw new Error(`disclosure of ${where}.${d.key} names a claim it may not`);
        }
        walk(d.value, `${where}.${d.key}`);
      }
    }
  };
  walk(payload, '$');
  const unreferenced = [...byDigest].filter(([digest]) => !seen.has(digest));
  if (unreferenced.length > 0) {
    const list = unreferenced.map(([digest, d]) => `${d.encode()} (digest ${digest})`).join(', ');
    throw new Error(`disclosure not referenced by any digest in the payload: ${list}`);
  }
}

// Run a checker's `main`, which returns what to print for a valid token or throws: exit 0 and
// the JSON on stdout, exit 1 and the library's error on stderr, exit 2 for a UsageError.
export async function run(main) {
  try {
    const verdict = await main();
    process.stdout.write(`${JSON.stringify({ valid: true, ...verdict })}\n`);
    process.exitCode = 0;
  } catch (e) {
    process.stderr.write(`${e instanceof UsageError ? '' : 'invalid: '}${e.message}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  }
}
