/**
 * The JSON API of PROTOCOL §4 over fetch: same-origin session cookie, X-CSRFToken on
 * unsafe methods, errors as ApiError carrying the §6 code.
 * @module api
 */

/** An API error: `status` (HTTP), `code` (§6 code), `detail`, and the whole `body`. */
export class ApiError extends Error {
  constructor(status, code, detail, body) {
    super(detail || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;
  }
}

/** The CSRF token to send as `X-CSRFToken` (from the `csrftoken` cookie). */
export function csrfToken() {
  return cookie('csrftoken');
}

function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return '';
}

/**
 * Call the API; resolves the parsed JSON body (null for 204), rejects with ApiError.
 * `options.headers` adds request headers (e.g. `X-Device-Id`, which names the acting
 * device on link approvals and history keys).
 */
export async function request(method, path, body = undefined, { headers: extra = {} } = {}) {
  const headers = { Accept: 'application/json', ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (!['GET', 'HEAD'].includes(method)) headers['X-CSRFToken'] = cookie('csrftoken');
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached.');
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError(response.status, error.code ?? `http_${response.status}`, error.detail ?? response.statusText, data);
  }
  return data;
}

const get = (path) => request('GET', path);
const enc = encodeURIComponent;

export const api = {
  session: () => get('/api/session/'),
  logout: () => request('DELETE', '/api/session/'),
  searchUsers: (q) => get(`/api/users/?q=${enc(q)}`),
  myDevices: () => get('/api/devices/'),
  registerDevice: (body) => request('POST', '/api/devices/', body),
  revokeDevice: (id) => request('DELETE', `/api/devices/${enc(id)}/`),
  userDevices: (username, includeRevoked = false) =>
    get(`/api/users/${enc(username)}/devices/${includeRevoked ? '?include_revoked=1' : ''}`),
  keyOwner: (kid) => get(`/api/keys/${enc(kid)}/`),
  conversations: () => get('/api/conversations/'),
  /** A direct conversation with one other user (the existing one if there is one). */
  createConversation: (members) => request('POST', '/api/conversations/', { members }),
  /** A group: `{gid, title, roster: <record 0>}` (§8). */
  createGroup: (body) => request('POST', '/api/conversations/', body),
  /** Roster records with n > `after`, ascending. */
  roster: (id, after = -1) => get(`/api/conversations/${enc(id)}/roster/?after=${after}`),
  /** One signed record (`{record}`), or record 0 of a group without roster (`{gid, record}`). */
  postRecord: (id, body) => request('POST', `/api/conversations/${enc(id)}/roster/`, body),
  history: (id, { beforeSeq = null, limit = 50 } = {}) =>
    get(`/api/conversations/${enc(id)}/messages/?limit=${limit}${beforeSeq ? `&before_seq=${beforeSeq}` : ''}`),
  /** The sender takes her message back for everyone (§10.1): 204. */
  takeBack: (id, messageId) => request('DELETE', `/api/conversations/${enc(id)}/messages/${enc(messageId)}/`),
  // identity keys, link requests and history keys (PROTOCOL §4, §7)
  userIdentity: (username) => get(`/api/users/${enc(username)}/identity/`),
  putIdentity: (body) => request('PUT', '/api/identity/', body),
  certifyDevice: (id, cert) => request('POST', `/api/devices/${enc(id)}/cert/`, { cert }),
  createLinkRequest: (body) => request('POST', '/api/link-requests/', body),
  linkRequests: () => get('/api/link-requests/'),
  linkRequest: (id) => get(`/api/link-requests/${enc(id)}/`),
  approveLinkRequest: (id, body, deviceId) =>
    request('POST', `/api/link-requests/${enc(id)}/approve/`, body, { headers: { 'X-Device-Id': String(deviceId) } }),
  deleteLinkRequest: (id) => request('DELETE', `/api/link-requests/${enc(id)}/`),
  historyKeys: (targetId, wraps, deviceId) =>
    request('POST', `/api/devices/${enc(targetId)}/history-keys/`, { wraps }, { headers: { 'X-Device-Id': String(deviceId) } }),
  /** The bytes of a blob (§10.2) as a fetch Response (streamed by the caller); ApiError unless 200. */
  blob: async (blobId, { signal } = {}) => {
    let response;
    try {
      response = await fetch(`/api/blobs/${enc(blobId)}/`, { credentials: 'same-origin', signal });
    } catch (error) {
      if (error?.name === 'AbortError') throw error;
      throw new ApiError(0, 'network', 'The server cannot be reached.');
    }
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new ApiError(response.status, data?.error?.code ?? `http_${response.status}`, data?.error?.detail ?? response.statusText, data);
    }
    return response;
  },
  send: (id, clientMsgId, envelope) =>
    request('POST', `/api/conversations/${enc(id)}/messages/`, { client_msg_id: clientMsgId, envelope }),
};
