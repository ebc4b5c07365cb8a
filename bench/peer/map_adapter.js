// An unbounded in-memory adapter for node-oidc-provider. Its built-in development adapter is an
// LRU of 1,000 entries: under load it evicts sessions, grants and the very tokens the refresh and
// introspection scenarios reuse (introspection then answers {"active":false}), and it recomputes a
// grant's expiry over all of the grant's tokens on every write. This one keeps everything until it
// expires, with O(1) writes: the most favourable storage node-oidc-provider can have (no I/O).
const store = new Map(); // key -> { payload, expiresAt }
const grants = new Map(); // grantId -> Set of keys
const sessionUids = new Map();
const userCodes = new Map();
const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
const epoch = () => Math.floor(Date.now() / 1000);

function get(key) {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.expiresAt !== undefined && e.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return e.payload;
}

export default class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined });
    if (this.model === 'Session' && payload.uid) sessionUids.set(payload.uid, id);
    if (payload.userCode) userCodes.set(payload.userCode, id);
    if (grantable.has(this.model) && payload.grantId) {
      let members = grants.get(payload.grantId);
      if (!members) grants.set(payload.grantId, (members = new Set()));
      members.add(key);
    }
  }

  async find(id) {
    return get(this.key(id));
  }

  async findByUid(uid) {
    const id = sessionUids.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = userCodes.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const p = get(this.key(id));
    if (p) p.consumed = epoch();
  }

  async destroy(id) {
    const key = this.key(id);
    const p = get(key);
    store.delete(key);
    if (p?.grantId) grants.get(p.grantId)?.delete(key);
  }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) ?? []) store.delete(key);
    grants.delete(grantId);
  }
}
