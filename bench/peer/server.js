// node-oidc-provider as Valet's benchmark peer, configured as close to the Valet setup of
// bench/bench.py as it allows:
//   * one confidential client `bench` (client_secret_basic; secret compared in plain, as
//     node-oidc-provider always does), grants authorization_code, refresh_token, client_credentials;
//   * client credentials: opaque access token by default; an RS256 JWT access token when the
//     request names the resource https://api.bench/jwt (resource indicators, accessTokenFormat jwt),
//     an ES256 one for https://api.bench/es256 (signed with the P-256 key of the JWKS; ID tokens and
//     the RS256 resource keep the RSA key: the keystore picks a key by alg);
//   * code flow (no PKCE, as the Valet scenario): opaque access token + refresh token + RS256 ID
//     token; refresh tokens are issued whenever the client may use the refresh_token grant (Valet
//     issues one for the `refresh_token` scope) and are not rotated for a confidential client
//     (Valet's default too);
//   * introspection enabled;
//   * interactions answered by this process without pages: login as `bench-user`, consent to what
//     is asked. The first authorization of a session goes through them once; later ones in the same
//     session redirect straight to the client with a code, as Valet's remembered consent does.
//   * storage: an unbounded in-memory Map (map_adapter.js; the built-in development adapter is a
//     1,000-entry LRU that evicts the tokens under test). Valet persists everything to SQLite or
//     PostgreSQL; noted in bench/README.md.
//
// Env: PORT (required), CLIENT_SECRET (required), REDIRECT_URI.
import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import MapAdapter from './map_adapter.js';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = process.env.REDIRECT_URI || 'http://localhost:1717/OauthRedirect';
const jwtResource = 'https://api.bench/jwt';
const es256Resource = 'https://api.bench/es256';
const jwtAlgs = new Map([[jwtResource, 'RS256'], [es256Resource, 'ES256']]);

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
Object.assign(rsa, { kid: 'rs1', use: 'sig', alg: 'RS256' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
Object.assign(ec, { kid: 'es1', use: 'sig', alg: 'ES256' });

const configuration = {
  adapter: MapAdapter,
  clients: [{
    client_id: 'bench',
    client_secret: process.env.CLIENT_SECRET,
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    scope: 'openid offline_access api',
  }],
  jwks: { keys: [rsa, ec] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'api'],
  claims: { openid: ['sub'] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => false },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: 3600, ClientCredentials: 3600, IdToken: 3600, AuthorizationCode: 900,
    RefreshToken: 30 * 24 * 3600, Grant: 30 * 24 * 3600, Session: 24 * 3600, Interaction: 3600,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        const alg = jwtAlgs.get(resourceIndicator);
        if (alg) {
          return { scope: 'api', audience: resourceIndicator, accessTokenFormat: 'jwt', accessTokenTTL: 3600, jwt: { sign: { alg } } };
        }
        throw new Provider.errors.InvalidTarget();
      },
    },
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
const handler = provider.callback();

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: 'bench-user' } }, { mergeWithLastSubmission: false });
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((e) => {
      console.error('interaction', e);
      res.statusCode = 500;
      res.end(String(e));
    });
    return;
  }
  handler(req, res);
}).listen(port, '127.0.0.1', () => console.log(`node-oidc-provider listening on ${issuer}`));
