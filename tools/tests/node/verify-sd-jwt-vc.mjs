// Verify an SD-JWT VC (typ dc+sd-jwt) with @sd-jwt/sd-jwt-vc, a library we did not write, and
// with --status-list its Token Status List entry (@sd-jwt/jwt-status-list).
//
//   node verify-sd-jwt-vc.mjs --issuer-jwks FILE --token FILE [--status-list FILE]
//
// FILE of --issuer-jwks: the issuer's metadata as served at /.well-known/jwt-vc-issuer,
// {"issuer":...,"jwks":{"keys":[...]}}; the token's iss must be its issuer, and the key is the
// one its kid names (or the only one). FILE of --token: the compact SD-JWT VC, ES256.
// FILE of --status-list: the status list token (typ statuslist+jwt, signed by a key of the same
// JWKS, its sub the uri the credential's status.status_list names); the credential's entry
// must be 0 (VALID). Without --status-list the status is not checked, and "status" says so.
//
// Checked here beside the library (which does not): the header's typ, the issuer, the status
// list token's typ and sub, and RFC 9901's disclosure rules (see checker.mjs).
//
// Valid: exit 0 and {"valid":true,"alg","kid","claims":{...},"disclosed":[claim paths],
// "disclosures":N,"status":"valid"|"not checked"|"none"} on stdout. Invalid: exit 1 and the
// error on stderr. A wrong command line or unreadable file: exit 2.

import { checkDisclosureReferences, header, jwsVerifier, library, options, readJson, readText, run, UsageError } from './checker.mjs';

const USAGE = 'node verify-sd-jwt-vc.mjs --issuer-jwks FILE --token FILE [--status-list FILE]';
const TYP = 'dc+sd-jwt';
const STATUS_LIST_TYP = 'statuslist+jwt';

await run(async () => {
  const args = options(
    {
      'issuer-jwks': { type: 'string', required: true },
      token: { type: 'string', required: true },
      'status-list': { type: 'string' },
    },
    USAGE,
  );
  const metadata = readJson(args['issuer-jwks']);
  const keys = metadata?.jwks?.keys;
  if (typeof metadata.issuer !== 'string' || !Array.isArray(keys)) {
    throw new UsageError(`${args['issuer-jwks']} is not issuer metadata {"issuer":...,"jwks":{"keys":[...]}}`);
  }
  const statusList = args['status-list'] === undefined ? undefined : readText(args['status-list']);
  const { SDJwtVcInstance } = library('@sd-jwt/sd-jwt-vc');
  const { digest } = library('@sd-jwt/crypto-nodejs');

  const compact = readText(args.token);
  const { typ, alg, kid } = header(compact);
  if (typ !== TYP) throw new Error(`typ is ${JSON.stringify(typ)}, not ${TYP}`);

  // The library fetches a status list over HTTP; here it reads the file given, once its typ and
  // sub are checked. Without one, a subclass skips the library's status step.
  const statusListFetcher = async (uri) => {
    const { typ } = header(statusList);
    if (typ !== STATUS_LIST_TYP) throw new Error(`status list typ is ${JSON.stringify(typ)}, not ${STATUS_LIST_TYP}`);
    const { Jwt } = library('@sd-jwt/core');
    const { sub } = Jwt.decodeJWT(statusList).payload;
    if (sub !== uri) throw new Error(`status list sub ${JSON.stringify(sub)} is not the credential's uri ${JSON.stringify(uri)}`);
    return statusList;
  };
  class WithoutStatus extends SDJwtVcInstance {
    async verifyStatus() {}
  }
  const Instance = statusList === undefined ? WithoutStatus : SDJwtVcInstance;
  const vc = new Instance({ hasher: digest, verifier: jwsVerifier(keys, ['ES256']), statusListFetcher });
  const { payload: claims } = await vc.verify(compact);
  if (claims.iss !== metadata.issuer) {
    throw new Error(`iss ${JSON.stringify(claims.iss)} is not the metadata's issuer ${JSON.stringify(metadata.issuer)}`);
  }
  if (typeof claims.vct !== 'string') throw new Error('no vct');

  const decoded = await vc.decode(compact);
  const { _sd_alg: sdAlg = 'sha-256' } = decoded.jwt.payload;
  await checkDisclosureReferences(decoded.jwt.payload, decoded.disclosures, { hasher: digest, alg: sdAlg });
  const hasStatus = claims.status?.status_list !== undefined;
  return {
    alg,
    kid,
    claims,
    disclosed: await decoded.presentableKeys(digest),
    disclosures: decoded.disclosures.length,
    status: !hasStatus ? 'none' : statusList === undefined ? 'not checked' : 'valid',
  };
});
