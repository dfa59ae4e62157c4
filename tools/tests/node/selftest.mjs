// The SD-JWT checkers' own test: issue tokens with the same npm library (keys made with Node's
// crypto), run verify-sd-jwt.mjs and verify-sd-jwt-vc.mjs on good and tampered ones, and check
// each verdict. Prints one line a case and "N passed, M failed"; exits 1 on any wrong verdict.
//
//   node selftest.mjs

import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { library } from './checker.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { SDJwtInstance, FlattenJSON, Jwt } = library('@sd-jwt/core');
const { SDJwtVcInstance } = library('@sd-jwt/sd-jwt-vc');
const { StatusList, createHeaderAndPayload } = library('@sd-jwt/jwt-status-list');
const { digest, generateSalt } = library('@sd-jwt/crypto-nodejs');
const { base64urlEncode } = library('@sd-jwt/utils');

const folder = mkdtempSync(join(tmpdir(), 'sd-jwt-selftest-'));
let file = 0;
// Write `content` (a string, or JSON) to a new file of the scratch folder; its path.
function written(content) {
  const path = join(folder, `${file++}`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

// A key pair made with Node's crypto: the public JWK (with `kid`) and a signer for the library.
function keyPair(type, options, kid, alg) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync(type, options);
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid };
  const ecdsa = type === 'ec';
  const signer = (input) =>
    crypto
      .sign(ecdsa ? 'sha256' : null, Buffer.from(input), { key: privateKey, dsaEncoding: ecdsa ? 'ieee-p1363' : undefined })
      .toString('base64url');
  return { jwk, signer, alg };
}
const ed25519 = (kid) => keyPair('ed25519', {}, kid, 'Ed25519');
const p256 = (kid) => keyPair('ec', { namedCurve: 'P-256' }, kid, 'ES256');

// Tampering, as an attacker holding a token would.
const parts = (token) => token.split('~');
// The token with disclosure `i` (0 is the first) replaced by `by`.
const replaceDisclosure = (token, i, by) => parts(token).map((p, j) => (j === i + 1 ? by : p)).join('~');
// A disclosure whose value is changed: a valid disclosure, but not the one the issuer hashed.
function altered(disclosure) {
  const [salt, name, value] = JSON.parse(Buffer.from(disclosure, 'base64url').toString('utf8'));
  return base64urlEncode(JSON.stringify([salt, name, `${value}-altered`]));
}
// The token with one more disclosure, taken from another token.
const withExtra = (token, disclosure) => `${token}${disclosure}~`;

const results = [];
// Run `script` with `args`; `expect` is true (valid) or false (invalid); `check` looks at the
// printed verdict of a valid one.
function verdict(name, script, args, expect, check = () => true) {
  const run = spawnSync(process.execPath, [join(HERE, script), ...args], { encoding: 'utf8' });
  const valid = run.status === 0;
  let ok = valid === expect && (run.status === 0 || run.status === 1);
  let why = valid ? run.stdout.trim() : run.stderr.trim().split('\n').pop();
  if (ok && valid) {
    const printed = JSON.parse(run.stdout);
    ok = printed.valid === true && check(printed);
    if (!ok) why = `unexpected output ${run.stdout.trim()}`;
  }
  results.push(ok);
  console.log(`${ok ? 'ok   ' : 'WRONG'} ${name}: ${valid ? 'valid' : `refused (${why})`}`);
  if (!ok) console.log(`      exit ${run.status}\n      stdout: ${run.stdout}      stderr: ${run.stderr}`);
}

async function sdJwt() {
  const issuer = ed25519('issuer-1');
  const issue = (key, alg = key.alg) =>
    new SDJwtInstance({ hasher: digest, saltGenerator: generateSalt, signer: key.signer, signAlg: alg }).issue(
      { iss: 'https://issuer.example', given_name: 'Ada', family_name: 'Lovelace', address: { locality: 'London' } },
      { _sd: ['given_name', 'family_name'], address: { _sd: ['locality'] } },
      { header: { typ: 'example+sd-jwt' } },
    );
  const token = await issue(issuer);
  const jwk = written(issuer.jwk);
  const run = (name, t, expect, check, key = jwk) => verdict(`sd-jwt: ${name}`, 'verify-sd-jwt.mjs', ['--jwk', key, '--token', written(t)], expect, check);

  run('compact', token, true, (v) => v.claims.given_name === 'Ada' && v.claims.address.locality === 'London' && v.disclosures === 3 && !('_sd' in v.claims));
  run('flattened JSON (RFC 9901 section 8)', FlattenJSON.fromEncode(token).toJson(), true, (v) => v.claims.family_name === 'Lovelace');
  run('alg EdDSA', await issue(issuer, 'EdDSA'), true, (v) => v.alg === 'EdDSA');
  run('fewer disclosures presented', replaceDisclosure(token, 0, '').replace('~~', '~'), true, (v) => v.disclosures === 2 && v.disclosed.length === 2);
  run('another key', token, false, undefined, written(ed25519('issuer-1').jwk));
  run('an altered disclosure', replaceDisclosure(token, 0, altered(parts(token)[1])), false);
  run('a disclosure whose digest is not in the payload', withExtra(token, parts(await issue(issuer))[1]), false);
  run('a disclosure sent twice', withExtra(token, parts(token)[1]), false);
  const [h, p, s] = parts(token)[0].split('.');
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  const forged = Buffer.from(JSON.stringify({ ...payload, iss: 'https://attacker.example' })).toString('base64url');
  run('a changed payload', [`${h}.${forged}.${s}`, ...parts(token).slice(1)].join('~'), false);
  run('alg ES256 on an Ed25519 key', await issue({ ...issuer, alg: 'ES256' }), false);
}

async function sdJwtVc() {
  const issuerUrl = 'https://issuer.example';
  const listUri = `${issuerUrl}/status/1`;
  const issuer = p256('vc-key-1');
  const other = p256('vc-key-2');
  const metadata = written({ issuer: issuerUrl, jwks: { keys: [other.jwk, issuer.jwk] } });
  const issue = ({ key = issuer, idx = 0, header = {}, iss = issuerUrl } = {}) =>
    new SDJwtVcInstance({ hasher: digest, saltGenerator: generateSalt, signer: key.signer, signAlg: key.alg }).issue(
      {
        iss,
        vct: 'https://jol.example/vct/person',
        iat: Math.floor(Date.now() / 1000),
        given_name: 'Ada',
        birthdate: '1815-12-10',
        status: { status_list: { idx, uri: listUri } },
      },
      { _sd: ['given_name', 'birthdate'] },
      { header: { kid: key.jwk.kid, ...header } },
    );
  const statusList = async ({ sub = listUri, typ = 'statuslist+jwt', key = issuer } = {}) => {
    const list = new StatusList([0, 1, 0, 0, 0, 0, 0, 0], 1);
    const { header, payload } = createHeaderAndPayload(
      list,
      { iss: issuerUrl, sub, iat: Math.floor(Date.now() / 1000) },
      { alg: key.alg, typ: 'statuslist+jwt', kid: key.jwk.kid },
    );
    return new Jwt({ header: { ...header, typ }, payload }).sign(key.signer);
  };
  const token = await issue();
  const list = written(await statusList());
  const run = (name, t, expect, check, extra = []) =>
    verdict(`sd-jwt-vc: ${name}`, 'verify-sd-jwt-vc.mjs', ['--issuer-jwks', metadata, '--token', written(t), ...extra], expect, check);

  run('without a status list', token, true, (v) => v.claims.given_name === 'Ada' && v.status === 'not checked' && v.disclosed.length === 2 && v.kid === 'vc-key-1');
  run('valid in the status list', token, true, (v) => v.status === 'valid', ['--status-list', list]);
  run('revoked in the status list', await issue({ idx: 1 }), false, undefined, ['--status-list', list]);
  run('a status list for another uri', token, false, undefined, ['--status-list', written(await statusList({ sub: `${listUri}x` }))]);
  run('a status list of another typ', token, false, undefined, ['--status-list', written(await statusList({ typ: 'jwt' }))]);
  run('a status list signed by a key not in the metadata', token, false, undefined, ['--status-list', written(await statusList({ key: p256('vc-key-1') }))]);
  run('typ vc+sd-jwt', await issue({ header: { typ: 'vc+sd-jwt' } }), false);
  run('a key not in the metadata', await issue({ key: p256('vc-key-1') }), false);
  run('an issuer other than the metadata\'s', await issue({ iss: 'https://attacker.example' }), false);
  run('an altered disclosure', replaceDisclosure(token, 1, altered(parts(token)[2])), false);
  run('a disclosure whose digest is not in the payload', withExtra(token, parts(await issue())[1]), false);
}

try {
  await sdJwt();
  await sdJwtVc();
} finally {
  rmSync(folder, { recursive: true, force: true });
}
const failed = results.filter((ok) => !ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
