// Verify an SD-JWT (RFC 9901) with @sd-jwt/core, a library we did not write.
//
//   node verify-sd-jwt.mjs --jwk FILE --token FILE
//
// FILE of --jwk: the issuer's Ed25519 public key, {"kty":"OKP","crv":"Ed25519","x":...}.
// FILE of --token: the SD-JWT, compact (<jws>~<disclosure>~...~) or in the flattened JWS JSON
// serialization of RFC 9901 section 8 ({"protected","payload","signature",
// "header":{"disclosures":[...]}}), which the library's FlattenJSON turns into the compact form.
// The JWS alg must be Ed25519 (RFC 9864) or EdDSA; the signature is checked with Node's crypto.
//
// Valid: exit 0 and {"valid":true,"claims":{...},"disclosed":[claim paths],"disclosures":N}
// on stdout (claims: the payload with the disclosed claims in place). Invalid: exit 1 and the
// error on stderr. A wrong command line or unreadable file: exit 2.

import { checkDisclosureReferences, header, jwsVerifier, library, options, readJson, readText, run, UsageError } from './checker.mjs';

const USAGE = 'node verify-sd-jwt.mjs --jwk FILE --token FILE';

await run(async () => {
  const args = options({ jwk: { type: 'string', required: true }, token: { type: 'string', required: true } }, USAGE);
  const jwk = readJson(args.jwk);
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') {
    throw new UsageError(`${args.jwk} is not an Ed25519 public key (kty OKP, crv Ed25519)`);
  }
  const { SDJwtInstance, FlattenJSON } = library('@sd-jwt/core');
  const { digest } = library('@sd-jwt/crypto-nodejs');

  const text = readText(args.token);
  const compact = text.startsWith('{') ? FlattenJSON.fromSerialized(JSON.parse(text)).toEncoded() : text;
  const sdJwt = new SDJwtInstance({ hasher: digest, verifier: jwsVerifier([jwk], ['Ed25519', 'EdDSA']) });
  const { payload: claims } = await sdJwt.verify(compact);

  const decoded = await sdJwt.decode(compact);
  const { _sd_alg: alg = 'sha-256' } = decoded.jwt.payload;
  await checkDisclosureReferences(decoded.jwt.payload, decoded.disclosures, { hasher: digest, alg });
  return {
    alg: header(compact).alg,
    claims,
    disclosed: await decoded.presentableKeys(digest),
    disclosures: decoded.disclosures.length,
  };
});
