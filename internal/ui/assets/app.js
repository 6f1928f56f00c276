// kpo's web UI. Every Kubernetes call goes through the local server's /k8s proxy, which makes
// it with the user's kubeconfig identity; the API server's own refusal messages are shown as
// they come. The DOM is built with textContent only: nothing the cluster returns is parsed as
// HTML.

const KPO = '/apis/kpo.dev/v1alpha1';
const SYNC_ANNOTATION = 'kpo.dev/sync-requested';
const LATEST_LABEL = 'kpo.dev/latest-revision';
const main = document.getElementById('main');
const statusBox = document.getElementById('status');
const nsInput = document.getElementById('namespace');
let namespace = 'default';
let renderSeq = 0; // ignores a route's late answers once the page has moved on

// h builds an element: h('a', {href: '#'}, 'text', child...).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// APIError carries the API server's (or the local server's) message.
class APIError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

async function request(method, url, body, contentType = 'application/json') {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = contentType;
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const msg = (data && data.message) || text || res.statusText;
    throw new APIError(res.status, msg);
  }
  return data;
}

const k8s = (method, path, body, type) => request(method, '/k8s' + path, body, type);
const nsPath = (resource, name = '') => `${KPO}/namespaces/${encodeURIComponent(namespace)}/${resource}${name ? '/' + encodeURIComponent(name) : ''}`;
const mergePatch = (path, body) => k8s('PATCH', path, body, 'application/merge-patch+json');

// mayI asks the API server whether the user may do verb on a resource (a
// SelfSubjectAccessReview): buttons are shown only for what RBAC allows.
async function mayI(verb, resource, { group = 'kpo.dev', subresource = '', name = '' } = {}) {
  try {
    const review = await k8s('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { namespace, verb, group, resource, subresource, name } },
    });
    return Boolean(review.status && review.status.allowed);
  } catch {
    return false;
  }
}

function say(kind, message) {
  statusBox.replaceChildren(h('p', { class: `alert ${kind}`, role: kind === 'error' ? 'alert' : undefined }, message));
}
function clearStatus() { statusBox.replaceChildren(); }
// carried is a message to show on the next page (after a save, on the revision page).
let carried = null;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const condition = (obj, type) => ((obj.status && obj.status.conditions) || []).find((c) => c.type === type);

function ago(time) {
  if (!time) return 'never';
  const s = Math.max(0, Math.round((Date.now() - new Date(time).getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function readyCell(obj) {
  const c = condition(obj, 'Ready');
  if (!c) return h('span', { class: 'state Unknown' }, 'Unknown');
  return h('span', { class: `state ${c.status}`, title: c.message || '' }, c.status === 'True' ? 'Ready' : c.reason || c.status);
}

// behind reports a revision whose upstream package has a newer published revision.
function behind(pr) {
  const st = pr.status || {};
  return Boolean(st.upstreamRevision && st.latestUpstreamRevision && st.latestUpstreamRevision !== st.upstreamRevision);
}

function lifecycleBadge(l) { return h('span', { class: `badge ${l || 'Draft'}` }, l || '—'); }

// tabKeys moves between the tabs of a tablist with the arrow, Home and End keys and selects
// the one reached, as the ARIA tabs pattern has it; Tab leaves the list.
function tabKeys(e) {
  const tabs = [...e.currentTarget.querySelectorAll('[role="tab"]')];
  const i = tabs.indexOf(document.activeElement);
  const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
  if (i < 0 || next === undefined) return;
  e.preventDefault();
  const tab = tabs[(next + tabs.length) % tabs.length];
  refocus = `#${tab.id}`;
  tab.click();
}

// refocus names the element to focus once the next route has rendered (the tab the keyboard
// moved to), instead of the page.
let refocus = null;

// ---------------------------------------------------------------- repositories

async function repositoriesPage(seq) {
  const [list, maySync, mayRegister, mayUnregister] = await Promise.all([k8s('GET', nsPath('repositories')),
    mayI('patch', 'repositories'), mayI('create', 'repositories'), mayI('delete', 'repositories')]);
  if (seq !== renderSeq) return;
  const rows = list.items.map((repo) => h('tr', {},
    h('td', {}, h('a', { href: `#/packages?repository=${encodeURIComponent(repo.metadata.name)}` }, repo.metadata.name)),
    h('td', { class: 'small' }, (repo.spec.git && repo.spec.git.repo) || ''),
    h('td', {}, repo.spec.deployment ? 'Deployment' : 'Blueprints'),
    h('td', {}, readyCell(repo)),
    h('td', { title: (repo.status && repo.status.lastSyncTime) || '' }, ago(repo.status && repo.status.lastSyncTime)),
    h('td', {}, String((repo.status && repo.status.packageCount) || 0)),
    h('td', { class: 'row-actions' },
      maySync ? h('button', { onclick: (e) => syncNow(e.currentTarget, repo.metadata.name), 'aria-label': `Sync ${repo.metadata.name} now` }, 'Sync now') : '',
      mayUnregister ? h('button', { class: 'danger', onclick: (e) => unregister(e.currentTarget, repo), 'aria-label': `Unregister ${repo.metadata.name}` }, 'Unregister') : ''),
  ));
  main.replaceChildren(
    h('h1', {}, 'Repositories'),
    list.items.length === 0
      ? h('p', { class: 'muted' }, `No repositories in namespace ${namespace}.${mayRegister ? ' Register one below.' : ''}`)
      : h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Address', 'Content', 'Status', 'Last sync', 'Packages', h('span', { class: 'muted' }, 'Actions')].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', {}, rows)),
    mayRegister ? registerForm() : '',
  );
}

// field is a labelled input of a form.
function field(id, label, attrs = {}, hint = '') {
  return h('div', { class: 'field' }, h('label', { for: id }, label),
    h('input', { id, name: id, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': hint ? `${id}-hint` : undefined, ...attrs }),
    hint ? h('span', { id: `${id}-hint`, class: 'muted small' }, hint) : '');
}

// registerForm registers a Git repository as kpoctl repo reg does. Credentials are not typed
// here: the UI never reads or writes Secrets; it names one made with kubectl or kpoctl.
function registerForm() {
  const form = h('form', { id: 'register', class: 'card form', 'aria-labelledby': 'register-h', onsubmit: async (e) => {
    e.preventDefault();
    const v = Object.fromEntries(new FormData(form));
    const url = v['repo-url'].trim();
    const name = v['repo-name'].trim() || url.replace(/\/+$/, '').split('/').pop().replace(/\.git$/, '');
    const repo = { apiVersion: 'kpo.dev/v1alpha1', kind: 'Repository', metadata: { name, namespace },
      spec: { type: 'git', deployment: v['repo-deployment'] === 'true', git: { repo: url } } };
    if (v['repo-branch'].trim()) repo.spec.git.branch = v['repo-branch'].trim();
    if (v['repo-directory'].trim()) repo.spec.git.directory = v['repo-directory'].trim();
    if (v['repo-secret'].trim()) repo.spec.git.secretRef = { name: v['repo-secret'].trim() };
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await k8s('POST', nsPath('repositories'), repo);
      say('info', `Registered ${name}; kpo is reading it…`);
      for (let i = 0; i < 60; i++) {
        const r = await k8s('GET', nsPath('repositories', name));
        const c = condition(r, 'Ready');
        if (c && r.status.observedGeneration === r.metadata.generation && c.status === 'True') { say('ok', `${name} registered: ${r.status.packageCount || 0} package(s).`); break; }
        if (c && c.status === 'False' && c.reason !== 'Progressing') { say('error', `${name} is registered but not ready: ${c.reason}: ${c.message}`); break; }
        await sleep(500);
      }
      route();
    } catch (err) {
      say('error', `Not registered: ${err.message}`);
      button.disabled = false;
    }
  } },
  h('h2', { id: 'register-h' }, 'Register a repository'),
  h('div', { class: 'fields' },
    field('repo-url', 'Git URL', { required: true, type: 'url', placeholder: 'https://example.com/org/blueprints.git' }),
    field('repo-name', 'Name', { placeholder: 'from the URL', pattern: '[a-z0-9]([-a-z0-9]*[a-z0-9])?' }),
    field('repo-branch', 'Branch', { placeholder: 'main' }),
    field('repo-directory', 'Directory', { placeholder: '/' }),
    field('repo-secret', 'Credentials Secret', { placeholder: 'none' }, 'The name of a Secret in this namespace (basic-auth or bearerToken), made with kubectl or kpoctl repo reg.'),
    h('div', { class: 'check' }, h('input', { type: 'checkbox', id: 'repo-deployment', name: 'repo-deployment', value: 'true' }), h('label', { for: 'repo-deployment' }, 'Deployment repository'))),
  h('button', { type: 'submit', class: 'primary' }, 'Register'));
  return form;
}

// unregister removes a Repository as kpoctl repo unreg does (nothing is deleted from Git),
// after a second press confirms. The credentials Secret it names stays: the UI never touches
// Secrets.
async function unregister(button, repo) {
  const name = repo.metadata.name;
  if (button.dataset.confirm !== 'true') {
    button.dataset.confirm = 'true';
    button.textContent = `Confirm: unregister ${name}`;
    say('info', `Unregistering ${name} removes its package revisions from the cluster (nothing from Git). Press the button again to confirm.`);
    button.focus();
    return;
  }
  button.disabled = true;
  try {
    await k8s('DELETE', nsPath('repositories', name));
    for (let i = 0; i < 60; i++) {
      try { await k8s('GET', nsPath('repositories', name)); } catch (e) { if (e.code === 404) break; throw e; }
      await sleep(500);
    }
    const secret = repo.spec.git && repo.spec.git.secretRef;
    say('ok', `${name} unregistered.${secret ? ` Its Secret ${secret.name} is kept: delete it with kubectl if nothing else uses it.` : ''}`);
  } catch (e) {
    say('error', `Not unregistered: ${e.message}`);
  }
  route();
}

// syncNow asks for a sync as kpoctl repo sync does (a new kpo.dev/sync-requested value) and
// waits until the manager has handled it.
async function syncNow(button, name) {
  button.disabled = true;
  const req = String(Date.now()) + '000000';
  try {
    await mergePatch(nsPath('repositories', name), { metadata: { annotations: { [SYNC_ANNOTATION]: req } } });
    say('info', `Syncing ${name}…`);
    for (let i = 0; i < 60; i++) {
      const repo = await k8s('GET', nsPath('repositories', name));
      if (repo.status && repo.status.lastHandledSyncRequest === req) {
        const c = condition(repo, 'Ready');
        if (c && c.status === 'False') say('error', `${name}: ${c.reason}: ${c.message}`);
        else say('ok', `${name} synced.`);
        break;
      }
      await sleep(1000);
    }
  } catch (e) {
    say('error', e.message);
  }
  route();
}

// ---------------------------------------------------------------- packages

async function packagesPage(seq, params) {
  const [list, repos, mayAdd] = await Promise.all([k8s('GET', nsPath('packagerevisions')), k8s('GET', nsPath('repositories')), mayI('create', 'packagedrafts')]);
  if (seq !== renderSeq) return;
  const f = {
    repository: params.get('repository') || '', lifecycle: params.get('lifecycle') || '',
    latest: params.get('latest') === 'true', behind: params.get('behind') === 'true', q: params.get('q') || '',
  };
  const q = f.q.toLowerCase();
  const items = list.items.filter((pr) => (!f.repository || pr.spec.repository === f.repository)
    && (!f.lifecycle || pr.spec.lifecycle === f.lifecycle)
    && (!f.latest || (pr.metadata.labels || {})[LATEST_LABEL] === 'true')
    && (!f.behind || behind(pr))
    && (!q || [pr.metadata.name, pr.spec.packageName, pr.spec.workspaceName].some((s) => (s || '').toLowerCase().includes(q))))
    .sort((a, b) => (a.spec.repository + a.spec.packageName).localeCompare(b.spec.repository + b.spec.packageName) || (b.status.revision || 0) - (a.status.revision || 0));

  const update = () => {
    const form = document.getElementById('filters');
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
    location.hash = '#/packages' + (p.toString() ? '?' + p : '');
  };
  const select = (id, label, options, value) => h('div', {},
    h('label', { for: id }, label),
    h('select', { id, name: id, onchange: update }, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t))));
  const filters = h('form', { id: 'filters', class: 'filters', role: 'search', onsubmit: (e) => { e.preventDefault(); update(); } },
    select('repository', 'Repository', [['', 'All'], ...repos.items.map((r) => [r.metadata.name, r.metadata.name])], f.repository),
    select('lifecycle', 'Lifecycle', [['', 'All'], ...['Draft', 'Proposed', 'Published', 'DeletionProposed'].map((l) => [l, l])], f.lifecycle),
    h('div', { class: 'check' }, h('input', { type: 'checkbox', id: 'latest', name: 'latest', value: 'true', checked: f.latest, onchange: update }), h('label', { for: 'latest' }, 'Latest only')),
    h('div', { class: 'check' }, h('input', { type: 'checkbox', id: 'behind', name: 'behind', value: 'true', checked: f.behind, onchange: update }), h('label', { for: 'behind' }, 'Upstream behind')),
    h('div', {}, h('label', { for: 'q' }, 'Search'), h('input', { id: 'q', name: 'q', type: 'search', value: f.q, placeholder: 'name or workspace' })),
    h('button', { type: 'submit' }, 'Filter'),
  );
  const rows = items.map((pr) => h('tr', {},
    h('td', {}, h('a', { href: `#/revisions/${encodeURIComponent(pr.metadata.name)}` }, pr.metadata.name)),
    h('td', {}, pr.spec.packageName),
    h('td', {}, pr.spec.workspaceName),
    h('td', {}, String(pr.status.revision ?? 0)),
    h('td', {}, lifecycleBadge(pr.spec.lifecycle)),
    h('td', {}, (pr.metadata.labels || {})[LATEST_LABEL] === 'true' ? 'latest' : '', behind(pr) ? h('span', { class: 'badge Proposed', title: `upstream ${pr.status.latestUpstreamRevision} is newer` }, 'behind') : ''),
    h('td', {}, pr.spec.repository),
    h('td', {}, readyCell(pr)),
  ));
  main.replaceChildren(
    h('div', { class: 'head' }, h('h1', {}, 'Packages'), h('div', { class: 'actions' }, mayAdd ? h('a', { class: 'button primary', href: '#/add' }, 'Add package') : '')),
    filters,
    h('p', { class: 'muted small', 'aria-live': 'polite' }, `${items.length} of ${list.items.length} package revisions`),
    h('table', {}, h('thead', {}, h('tr', {}, ['Revision', 'Package', 'Workspace', 'Rev.', 'Lifecycle', 'Latest', 'Repository', 'Status'].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', {}, rows)),
  );
}

// ---------------------------------------------------------------- revision page

// The lifecycle moves the page offers; the local server checks and makes them as kpoctl rpkg
// propose / reject / approve / propose-delete do (internal/lifecycle).
const moves = {
  propose: { from: ['Draft'], move: 'propose', to: 'Proposed', label: 'Propose', done: 'proposed' },
  reject: { from: ['Proposed', 'DeletionProposed'], move: 'reject', to: (l) => (l === 'Proposed' ? 'Draft' : 'Published'), label: 'Reject', done: 'rejected' },
  approve: { from: ['Proposed'], move: 'approve', to: 'Published', label: 'Approve', done: 'approved' },
  proposeDelete: { from: ['Published'], move: 'propose-delete', to: 'DeletionProposed', label: 'Propose deletion', done: 'proposed for deletion' },
};

async function loadContent(name, ask = false) {
  try {
    // Asking the manager for a published revision's content is a write: a POST.
    if (ask) return await request('POST', '/ui/content/request', { namespace, name });
    return await request('GET', `/ui/content?namespace=${encodeURIComponent(namespace)}&name=${encodeURIComponent(name)}`);
  } catch (e) {
    return { error: e.message, files: {} };
  }
}

async function revisionPage(seq, name) {
  const [pr, content, mayPatch, mayApprove, mayEdit, mayDelete, all, mayDraft] = await Promise.all([
    k8s('GET', nsPath('packagerevisions', name)),
    loadContent(name),
    mayI('patch', 'packagerevisions', { name }),
    mayI('update', 'packagerevisions', { subresource: 'approval', name }),
    mayI('update', 'configmaps', { group: '' }),
    mayI('delete', 'packagerevisions', { name }),
    k8s('GET', nsPath('packagerevisions')),
    mayI('create', 'packagedrafts'),
  ]);
  if (seq !== renderSeq) return;
  const l = pr.spec.lifecycle;
  const siblings = all.items.filter((o) => o.spec.repository === pr.spec.repository && o.spec.packageName === pr.spec.packageName && o.metadata.name !== name)
    .sort((a, b) => (b.status.revision || 0) - (a.status.revision || 0));
  const settled = pr.status.lifecycle === l;
  const actions = [];
  if (l === 'Draft' && mayEdit && settled) actions.push(h('a', { class: 'button', href: `#/revisions/${encodeURIComponent(name)}/edit` }, 'Edit'));
  const allowed = { propose: mayPatch, reject: mayPatch, approve: mayApprove, proposeDelete: mayPatch };
  for (const [key, m] of Object.entries(moves)) {
    if (!allowed[key] || !m.from.includes(l)) continue;
    actions.push(h('button', { class: key === 'approve' ? 'primary' : key === 'reject' ? 'danger' : '', onclick: (e) => move(e.currentTarget, pr, m) }, m.label));
  }
  // New revisions from a published one: a copy, or a rollback / restore (kpoctl rpkg copy,
  // rollback).
  const pubs = [pr, ...siblings].filter(published).sort((a, b) => a.status.revision - b.status.revision);
  const latestPub = pubs[pubs.length - 1];
  if (mayDraft && settled && published(pr)) {
    actions.push(h('a', { class: 'button', href: `#/add?kind=copy&from=${encodeURIComponent(name)}` }, 'New revision'));
    if (latestPub && latestPub.metadata.name !== name) {
      actions.push(h('button', { onclick: (e) => newDraft(e.currentTarget, { to: name }, `Restore of v${pr.status.revision}`, '/ui/rollback') }, `Restore v${pr.status.revision}`));
    } else if (pubs.length > 1) {
      const prev = pubs[pubs.length - 2];
      actions.push(h('button', { onclick: (e) => newDraft(e.currentTarget, { to: prev.metadata.name }, `Rollback to v${prev.status.revision}`, '/ui/rollback') }, `Roll back to v${prev.status.revision}`));
    }
  }
  // A Published revision is proposed for deletion first; the rest is deleted at once.
  if (mayDelete && settled && l !== 'Published') actions.push(h('button', { class: 'danger', onclick: (e) => deleteRevision(e.currentTarget, pr) }, 'Delete'));

  const st = pr.status || {};
  const up = st.upstream && st.upstream.git;
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'Package'), h('dd', {}, pr.spec.packageName),
    h('dt', {}, 'Repository'), h('dd', {}, h('a', { href: `#/packages?repository=${encodeURIComponent(pr.spec.repository)}` }, pr.spec.repository)),
    h('dt', {}, 'Workspace'), h('dd', {}, pr.spec.workspaceName),
    h('dt', {}, 'Revision'), h('dd', {}, String(st.revision ?? 0)),
    h('dt', {}, 'Commit'), h('dd', {}, h('code', {}, st.commit ? st.commit.slice(0, 12) : '—')),
    st.publishedBy ? [h('dt', {}, 'Published by'), h('dd', {}, `${st.publishedBy} ${ago(st.publishedAt)}`)] : [],
    h('dt', {}, 'Upstream'), h('dd', {},
      st.upstreamRevision ? [h('a', { href: `#/revisions/${encodeURIComponent(st.upstreamRevision)}` }, st.upstreamRevision), ' ',
        h('a', { href: `#/diff?from=${encodeURIComponent(st.upstreamRevision)}&to=${encodeURIComponent(name)}`, id: 'diff-upstream' }, 'diff against upstream'),
        behind(pr) ? [' ', h('span', { class: 'badge Proposed' }, `behind: ${st.latestUpstreamRevision}`)] : '']
        : up ? `${up.repo} ${up.directory || ''}@${up.ref || ''}` : 'none'),
  );
  const conditions = h('table', {}, h('thead', {}, h('tr', {}, ['Type', 'Status', 'Reason', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, (st.conditions || []).map((c) => h('tr', {},
      h('td', {}, c.type), h('td', {}, h('span', { class: `state ${c.status}` }, c.status)), h('td', {}, c.reason), h('td', { class: 'small' }, c.message)))));
  const renderResults = (st.renderResults || []).length === 0
    ? h('p', { class: 'muted' }, 'No function results.')
    : h('ul', { class: 'results' }, st.renderResults.map((r) => h('li', {},
      h('span', { class: `sev-${r.severity || 'info'}` }, `[${r.severity || 'info'}] `), h('code', {}, r.image || ''), ' ', r.message || '',
      r.resource ? h('span', { class: 'muted small' }, ` (${r.resource})`) : '')));

  const upgradeCard = behind(pr) && mayDraft && st.lifecycle === 'Published' ? upgradeView(pr) : '';
  const downstreams = all.items.filter((o) => (o.metadata.labels || {})[LATEST_LABEL] === 'true' && published(o) && o.status.upstreamRevision
    && [pr, ...siblings].some((u) => u.metadata.name === o.status.upstreamRevision))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));

  main.replaceChildren(
    h('div', { class: 'head' }, h('h1', {}, name), lifecycleBadge(l), settled ? '' : h('span', { class: 'muted small' }, `moving from ${st.lifecycle}`), h('div', { class: 'actions' }, actions)),
    h('div', { class: 'grid2' },
      h('section', { class: 'card', 'aria-labelledby': 'facts-h' }, h('h2', { id: 'facts-h' }, 'Revision'), facts),
      h('section', { class: 'card', 'aria-labelledby': 'render-h' }, h('h2', { id: 'render-h' }, 'Render results'), renderResults)),
    upgradeCard,
    (st.conflicts || []).length ? conflictsView(pr, mayPatch && l === 'Draft') : '',
    h('section', { 'aria-labelledby': 'cond-h' }, h('h2', { id: 'cond-h' }, 'Conditions'), conditions),
    h('section', { 'aria-labelledby': 'files-h' }, h('h2', { id: 'files-h' }, 'Files'), filesView(content, name, mayPatch)),
    siblings.length === 0 ? '' : h('section', { 'aria-labelledby': 'timeline-h' }, h('h2', { id: 'timeline-h' }, 'History'), timeline(pr, siblings)),
    downstreams.length === 0 ? '' : downstreamView(pr, downstreams, mayDraft),
    siblings.length === 0 ? '' : h('section', { 'aria-labelledby': 'history-h' }, h('h2', { id: 'history-h' }, `Other revisions of ${pr.spec.packageName}`),
      h('ul', { class: 'history' }, siblings.map((o) => h('li', {},
        h('a', { href: `#/revisions/${encodeURIComponent(o.metadata.name)}` }, o.metadata.name), ' ', lifecycleBadge(o.spec.lifecycle),
        o.status.revision > 0 ? h('span', { class: 'muted small' }, ` v${o.status.revision}`) : '',
        o.status.publishedAt ? h('span', { class: 'muted small' }, ` published ${ago(o.status.publishedAt)}`) : '')))),
    siblings.length === 0 ? '' : h('section', { 'aria-labelledby': 'compare-h' }, h('h2', { id: 'compare-h' }, 'Compare'),
      h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); location.hash = `#/diff?from=${encodeURIComponent(document.getElementById('compare-from').value)}&to=${encodeURIComponent(name)}`; } },
        h('div', {}, h('label', { for: 'compare-from' }, 'Changes since'),
          h('select', { id: 'compare-from' }, siblings.map((o) => h('option', { value: o.metadata.name }, `${o.metadata.name} (${o.spec.lifecycle}${o.status.revision > 0 ? `, v${o.status.revision}` : ''})`)))),
        h('button', { type: 'submit' }, 'Show diff'))),
  );
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== '') el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// timeline draws the package's revisions on a line, oldest published first, drafts and
// proposals after them; each mark links to its revision. The list below it says the same in
// words.
function timeline(pr, siblings) {
  const revs = [pr, ...siblings].sort((a, b) => {
    const ra = a.status.revision > 0 ? a.status.revision : 1e9;
    const rb = b.status.revision > 0 ? b.status.revision : 1e9;
    return ra - rb || a.metadata.name.localeCompare(b.metadata.name);
  });
  const step = 120;
  const width = Math.max(240, 60 + step * (revs.length - 1) + 60);
  const color = { Draft: '#5b6670', Proposed: '#9a6200', Published: '#1d7a46', DeletionProposed: '#b3261e' };
  const label = (o) => (o.status.revision > 0 ? `v${o.status.revision}` : o.spec.workspaceName);
  const summary = revs.map((o) => `${label(o)} ${o.spec.lifecycle}${o.metadata.name === pr.metadata.name ? ' (this one)' : ''}`).join(', ');
  return svg('svg', { class: 'timeline', width, height: 78, viewBox: `0 0 ${width} 78`, role: 'img', 'aria-label': `Revisions of ${pr.spec.packageName}: ${summary}` },
    svg('line', { x1: 40, y1: 30, x2: width - 40, y2: 30, stroke: '#c3ccd5', 'stroke-width': 2 }),
    revs.map((o, i) => {
      const x = 60 + i * step;
      const mine = o.metadata.name === pr.metadata.name;
      return svg('a', { href: `#/revisions/${encodeURIComponent(o.metadata.name)}`, 'aria-label': `${o.metadata.name}, ${o.spec.lifecycle}` },
        svg('title', {}, `${o.metadata.name} (${o.spec.lifecycle})`),
        svg('circle', { cx: x, cy: 30, r: mine ? 11 : 8, fill: o.spec.lifecycle === 'Published' ? color.Published : '#fff', stroke: color[o.spec.lifecycle] || '#5b6670', 'stroke-width': mine ? 4 : 3 }),
        svg('text', { x, y: 62, 'text-anchor': 'middle', 'font-size': 13, 'font-weight': mine ? 700 : 400, fill: '#1d2329' }, label(o)));
    }));
}

// upgradeView offers the upgrade to the newest upstream revision, as kpoctl rpkg upgrade.
function upgradeView(pr) {
  const st = pr.status;
  const allow = h('input', { type: 'checkbox', id: 'allow-conflicts' });
  return h('section', { class: 'card upgrade', 'aria-labelledby': 'upgrade-h' },
    h('h2', { id: 'upgrade-h' }, 'Upgrade available'),
    h('p', {}, `Upstream ${st.latestUpstreamRevision} is newer than ${st.upstreamRevision}, which this revision is based on.`),
    h('div', { class: 'row-actions' },
      h('div', { class: 'check' }, allow, h('label', { for: 'allow-conflicts' }, ' Keep conflicts to resolve here (otherwise a conflict stops the upgrade)')),
      h('button', { class: 'primary', id: 'upgrade', onclick: (e) => newDraft(e.currentTarget, { name: pr.metadata.name, allowConflicts: allow.checked }, `Upgrade of ${pr.metadata.name}`, '/ui/upgrade') },
        `Upgrade to ${st.latestUpstreamRevision}`)));
}

// conflictsView lists the fields an upgrade could not merge (status.conflicts), and resolves
// them as kpoctl rpkg resolve does: the manager commits the chosen side with the user as author.
function conflictsView(pr, mayResolve) {
  const conflicts = pr.status.conflicts;
  const open = conflicts.filter((c) => !c.resolution).length;
  const resolve = async (button, choices) => {
    for (const b of document.querySelectorAll('#conflicts button')) b.disabled = true;
    try {
      await request('POST', '/ui/resolve', { namespace, name: pr.metadata.name, resourceVersion: pr.metadata.resourceVersion, choices });
      say('info', 'Resolving; the manager commits the choice…');
      for (let i = 0; i < 60; i++) {
        const p = await k8s('GET', nsPath('packagerevisions', pr.metadata.name));
        const c = condition(p, 'Ready');
        if (!((p.metadata.annotations || {})['kpo.dev/resolve-conflicts'])) { carried = null; say('ok', `Resolved ${Object.keys(choices).length} conflict(s).`); break; }
        if (c && c.reason === 'InvalidConflictResolution') { say('error', `${c.reason}: ${c.message}`); break; }
        await sleep(500);
      }
    } catch (e) {
      say('error', `Not resolved: ${e.message}`);
    }
    route();
  };
  const side = (c, take) => ({ [c.id]: take });
  return h('section', { id: 'conflicts', 'aria-labelledby': 'conflicts-h' },
    h('h2', { id: 'conflicts-h' }, `Merge conflicts (${open} of ${conflicts.length} unresolved)`),
    h('table', {}, h('thead', {}, h('tr', {}, ['Resource', 'Field', 'Local', 'Upstream', 'Resolution'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, conflicts.map((c) => h('tr', { 'data-conflict': c.id },
        h('td', {}, `${c.kind} ${c.namespace ? c.namespace + '/' : ''}${c.name}`, h('div', { class: 'muted small' }, c.file)),
        h('td', {}, h('code', {}, c.field)),
        h('td', {}, h('code', {}, c.local || '(deleted)')),
        h('td', {}, h('code', {}, c.upstream || '(deleted)')),
        h('td', {}, c.resolution ? h('span', { class: 'state True' }, c.resolution)
          : mayResolve ? h('div', { class: 'row-actions' },
            h('button', { onclick: (e) => resolve(e.currentTarget, side(c, 'local')), 'aria-label': `Keep the local value of ${c.field}` }, 'Keep local'),
            h('button', { onclick: (e) => resolve(e.currentTarget, side(c, 'upstream')), 'aria-label': `Take the upstream value of ${c.field}` }, 'Take upstream'))
            : h('span', { class: 'state False' }, 'unresolved')))))),
    open > 1 && mayResolve ? h('p', { class: 'row-actions' },
      h('button', { onclick: (e) => resolve(e.currentTarget, Object.fromEntries(conflicts.filter((c) => !c.resolution).map((c) => [c.id, 'local']))) }, 'Keep local for all'),
      h('button', { onclick: (e) => resolve(e.currentTarget, Object.fromEntries(conflicts.filter((c) => !c.resolution).map((c) => [c.id, 'upstream']))) }, 'Take upstream for all')) : '');
}

// downstreamTree draws the package and its downstream packages, one line each, amber when
// the downstream is behind; the table below says the same in words.
function downstreamTree(pr, downstreams) {
  const row = 34;
  const height = Math.max(60, 20 + row * downstreams.length);
  const width = 760;
  const rootY = height / 2;
  const label = (s, max) => (s.length > max ? s.slice(0, max - 1) + '…' : s);
  const late = downstreams.filter(behind).length;
  return svg('svg', { class: 'tree-picture', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `${pr.spec.repository}/${pr.spec.packageName} has ${downstreams.length} downstream package(s), ${late} behind` },
    svg('rect', { x: 10, y: rootY - 16, width: 230, height: 32, rx: 6, fill: '#e6eefb', stroke: '#9db8e6' }),
    svg('text', { x: 22, y: rootY + 5, 'font-size': 13, fill: '#173a70' }, label(`${pr.spec.repository}/${pr.spec.packageName}`, 30)),
    downstreams.map((d, i) => {
      const y = 10 + row * i + row / 2;
      const late = behind(d);
      const stroke = late ? '#9a6200' : '#1d7a46';
      return svg('a', { href: `#/revisions/${encodeURIComponent(d.metadata.name)}`, 'aria-label': `${d.metadata.name}${late ? ', behind' : ', up to date'}` },
        svg('title', {}, `${d.metadata.name}: based on ${d.status.upstreamRevision}${late ? `, behind ${d.status.latestUpstreamRevision}` : ''}`),
        svg('path', { d: `M240 ${rootY} C 300 ${rootY}, 300 ${y}, 360 ${y}`, fill: 'none', stroke, 'stroke-width': 2, 'stroke-dasharray': late ? '5 4' : undefined }),
        svg('rect', { x: 360, y: y - 13, width: 390, height: 26, rx: 6, fill: late ? '#fff4de' : '#e3f4ea', stroke }),
        svg('text', { x: 372, y: y + 5, 'font-size': 13, fill: '#1d2329' }, label(d.metadata.name, 40) + (late ? '  (behind)' : '')));
    }));
}

// downstreamView lists the latest published revision of every package cloned from this one,
// with a "behind" badge when this package has a newer published revision than the one it is
// based on, and upgrades all of those at once (as kpoctl rpkg upgrade --all-downstreams).
function downstreamView(pr, downstreams, mayDraft) {
  const late = downstreams.filter(behind);
  const allow = h('input', { type: 'checkbox', id: 'bulk-allow-conflicts' });
  // One upgrade draft per downstream behind, all asked for first, then followed.
  const bulk = async (button) => {
    button.disabled = true;
    say('info', `Upgrading ${late.length} downstream package(s)…`);
    const asked = await Promise.all(late.map((d) => request('POST', '/ui/upgrade', { namespace, name: d.metadata.name, allowConflicts: allow.checked })
      .then((r) => ({ d, draft: r.draft }), (e) => ({ d, error: e.message }))));
    const lines = await Promise.all(asked.map(async (a) => {
      if (a.error) return { ok: false, text: `${a.d.metadata.name}: ${a.error}` };
      const o = await followDraft(a.draft);
      return { ok: o.ok, text: o.ok ? `${a.d.metadata.name}: ${o.revision} ready` : `${a.d.metadata.name}: ${o.message}` };
    }));
    say(lines.every((l) => l.ok) ? 'ok' : 'error', `Upgrades: ${lines.map((l) => l.text).join('; ')}.`);
    route();
  };
  return h('section', { id: 'downstreams', 'aria-labelledby': 'downstreams-h' },
    h('div', { class: 'head' }, h('h2', { id: 'downstreams-h' }, `Downstream packages (${downstreams.length})`),
      mayDraft && late.length ? h('div', { class: 'actions' }, h('div', { class: 'check' }, allow, h('label', { for: 'bulk-allow-conflicts' }, ' Keep conflicts')),
        h('button', { class: 'primary', id: 'upgrade-all', onclick: (e) => bulk(e.currentTarget) }, `Upgrade ${late.length} behind`)) : ''),
    downstreamTree(pr, downstreams),
    h('table', {}, h('thead', {}, h('tr', {}, ['Revision', 'Repository', 'Based on', 'Upstream'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, downstreams.map((d) => h('tr', {},
        h('td', {}, h('a', { href: `#/revisions/${encodeURIComponent(d.metadata.name)}` }, d.metadata.name)),
        h('td', {}, d.spec.repository),
        h('td', {}, d.status.upstreamRevision),
        h('td', {}, behind(d) ? h('span', { class: 'badge Proposed', title: `${d.status.latestUpstreamRevision} is newer` }, `behind: ${d.status.latestUpstreamRevision}`) : h('span', { class: 'state True' }, 'up to date')))))));
}

// ---------------------------------------------------------------- diff

async function diffPage(seq, params) {
  const from = params.get('from') || '';
  const to = params.get('to') || '';
  const byResource = params.get('view') !== 'files';
  main.replaceChildren(h('h1', {}, `${from} → ${to}`), h('p', { class: 'muted' }, 'Loading the two revisions…'));
  const r = await request('POST', '/ui/diff', { namespace, from, to, byResource });
  if (seq !== renderSeq) return;
  const cls = (l) => (l.startsWith('+++') || l.startsWith('---') ? 'd-file' : l.startsWith('@@') ? 'd-hunk' : l.startsWith('+') ? 'd-add' : l.startsWith('-') ? 'd-del' : '');
  const pre = (text, attrs) => h('pre', { class: 'diff', tabindex: '0', ...attrs }, text.replace(/\n$/, '').split('\n').map((l) => h('span', { class: cls(l) }, l || ' ')));
  const view = (v, label) => h('a', { class: 'button', role: 'tab', id: `view-${v}`, 'aria-selected': String((v === 'files') !== byResource), tabindex: (v === 'files') !== byResource ? '0' : '-1',
    href: `#/diff?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&view=${v}` }, label);
  let body;
  if (!r.diff) body = h('p', { class: 'alert info' }, 'No difference.');
  else if (!byResource) body = pre(r.diff, { id: 'diff', 'aria-label': 'Unified diff' });
  else {
    body = h('div', { id: 'resource-diff' },
      h('p', { class: 'muted small' }, `${r.resources.length} resource(s) or file(s) changed, ${r.same} the same.`),
      r.resources.map((c) => h('section', { class: 'card resource-change', 'aria-label': `${c.id}: ${c.change}` },
        h('h2', { class: 'flush' }, h('span', { class: `badge ${{ added: 'Published', removed: 'DeletionProposed', changed: 'Proposed' }[c.change]}` }, c.change), ' ', c.id,
          h('span', { class: 'muted small' }, ` in ${c.file}`)),
        pre(c.diff, { 'aria-label': `Diff of ${c.id}` }))));
  }
  main.replaceChildren(
    h('div', { class: 'head' }, h('h1', {}, 'Diff'),
      h('div', { class: 'actions' }, h('a', { class: 'button', href: `#/revisions/${encodeURIComponent(to)}` }, `Back to ${to}`))),
    h('p', {}, 'From ', h('a', { href: `#/revisions/${encodeURIComponent(from)}` }, from), ' to ', h('a', { href: `#/revisions/${encodeURIComponent(to)}` }, to), '.'),
    h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Diff view', onkeydown: tabKeys }, view('resources', 'By resource'), view('files', 'By file')),
    body,
  );
}

function filesView(content, name, mayRequest) {
  if (content.error) {
    const box = h('div', {}, h('p', { class: 'alert info' }, content.error));
    if (mayRequest && name) {
      box.append(h('button', { onclick: async (e) => {
        e.currentTarget.disabled = true;
        box.replaceChildren(filesView(await loadContent(name, true)));
      } }, 'Load the files'));
    }
    return box;
  }
  const paths = Object.keys(content.files).sort(kptfileFirst);
  const viewer = h('pre', { id: 'file-view', tabindex: '0', 'aria-label': 'File contents' });
  const buttons = paths.map((p) => h('button', { type: 'button', 'data-path': p, onclick: () => show(p) }, p));
  const show = (p) => {
    viewer.textContent = content.files[p];
    viewer.setAttribute('aria-label', `Contents of ${p}`);
    for (const b of buttons) b.setAttribute('aria-current', String(b.dataset.path === p));
  };
  if (paths.length) show(paths[0]);
  return h('div', { class: 'files' }, h('nav', { 'aria-label': 'Files' }, h('ul', { class: 'tree' }, buttons.map((b) => h('li', {}, b)))), viewer);
}

function kptfileFirst(a, b) {
  const rank = (p) => (p === 'Kptfile' ? 0 : p.includes('/') ? 2 : 1);
  return rank(a) - rank(b) || a.localeCompare(b);
}

// move changes spec.lifecycle with optimistic locking (the checks were made on this version),
// then follows the revision until the manager has carried it out or said why not.
async function move(button, pr, m) {
  const name = pr.metadata.name;
  const to = typeof m.to === 'function' ? m.to(pr.spec.lifecycle) : m.to;
  button.disabled = true;
  try {
    await request('POST', '/ui/lifecycle', { namespace, name, move: m.move, resourceVersion: pr.metadata.resourceVersion });
    say('info', `${name}: ${m.done}, waiting for the manager…`);
    const outcome = await follow(name, (p) => p.status.lifecycle === to);
    say(outcome.ok ? 'ok' : 'error', outcome.message);
  } catch (e) {
    say('error', `Not ${m.done}: ${e.message}`);
  }
  route();
}

// deleteRevision deletes a revision as kpoctl rpkg del does (its PackageDraft with it), after
// the user confirms, and goes to the package list once it is gone.
async function deleteRevision(button, pr) {
  const name = pr.metadata.name;
  // A second, explicit button confirms (no modal dialog: keyboard and screen readers follow it).
  if (button.dataset.confirm !== 'true') {
    button.dataset.confirm = 'true';
    button.textContent = `Confirm: delete ${name}`;
    say('info', `Deleting ${name} removes ${pr.spec.lifecycle === 'DeletionProposed' ? 'its tag' : 'its branch'} from Git. Press the button again to confirm.`);
    button.focus();
    return;
  }
  button.disabled = true;
  try {
    await request('POST', '/ui/delete', { namespace, name });
    say('info', `Deleting ${name}…`);
    for (let i = 0; i < 60; i++) {
      try { await k8s('GET', nsPath('packagerevisions', name)); } catch (e) {
        if (e.code === 404) { carried = { kind: 'ok', message: `${name} deleted.` }; location.hash = `#/packages?repository=${encodeURIComponent(pr.spec.repository)}`; return; }
        throw e;
      }
      await sleep(500);
    }
    say('error', `${name}: the manager has not deleted it yet; reload later.`);
  } catch (e) {
    say('error', `Not deleted: ${e.message}`);
  }
  button.disabled = false;
}

// follow polls a revision until done(pr) with Ready true, or Ready false for a reason other
// than progress.
async function follow(name, done) {
  for (let i = 0; i < 60; i++) {
    const pr = await k8s('GET', nsPath('packagerevisions', name));
    const c = condition(pr, 'Ready');
    const current = c && pr.status.observedGeneration === pr.metadata.generation;
    if (current && c.status === 'False' && c.reason !== 'Progressing') return { ok: false, message: `${name}: ${c.reason}: ${c.message}`, pr };
    if (current && c.status === 'True' && done(pr)) return { ok: true, message: `${name} is ${pr.status.lifecycle}.`, pr };
    await sleep(500);
  }
  return { ok: false, message: `${name}: the manager has not carried out the change yet; reload later.` };
}

// ---------------------------------------------------------------- variants (read-only)

const conditionsTable = (conds) => h('table', {}, h('thead', {}, h('tr', {}, ['Type', 'Status', 'Reason', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
  h('tbody', {}, (conds || []).map((c) => h('tr', {},
    h('td', {}, c.type), h('td', {}, h('span', { class: `state ${c.status}` }, c.status)), h('td', {}, c.reason), h('td', { class: 'small' }, c.message)))));
const upstreamText = (u) => (u ? `${u.repo}/${u.package}${u.revision ? '@' + u.revision : ' (latest)'}` : '');
const revisionLink = (name) => h('a', { href: `#/revisions/${encodeURIComponent(name)}` }, name);

// variantsPage lists PackageVariants and PackageVariantSets with their status.
async function variantsPage(seq) {
  const [pvs, sets] = await Promise.all([k8s('GET', nsPath('packagevariants')), k8s('GET', nsPath('packagevariantsets'))]);
  if (seq !== renderSeq) return;
  const link = (kind, o) => h('a', { href: `#/variants/${kind}/${encodeURIComponent(o.metadata.name)}` }, o.metadata.name);
  main.replaceChildren(
    h('h1', {}, 'Variants'),
    h('section', { 'aria-labelledby': 'pv-h' }, h('h2', { id: 'pv-h' }, `Package variants (${pvs.items.length})`),
      pvs.items.length === 0 ? h('p', { class: 'muted' }, 'None in this namespace.')
        : h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Upstream', 'Downstream', 'Status', 'Downstream revisions'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, pvs.items.map((o) => h('tr', {}, h('td', {}, link('pv', o)), h('td', {}, upstreamText(o.spec.upstream)),
            h('td', {}, `${o.spec.downstream.repo}/${o.spec.downstream.package}`), h('td', {}, readyCell(o)),
            h('td', {}, ((o.status && o.status.downstreamTargets) || []).map((d) => h('div', {}, revisionLink(d.name))))))))),
    h('section', { 'aria-labelledby': 'pvs-h' }, h('h2', { id: 'pvs-h' }, `Package variant sets (${sets.items.length})`),
      sets.items.length === 0 ? h('p', { class: 'muted' }, 'None in this namespace.')
        : h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Upstream', 'Variants ready', 'Status'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, sets.items.map((o) => h('tr', {}, h('td', {}, link('pvs', o)), h('td', {}, upstreamText(o.spec.upstream)),
            h('td', {}, `${(o.status && o.status.readyVariants) || 0} of ${(o.status && o.status.variants) || 0}`), h('td', {}, readyCell(o))))))),
  );
}

// variantPage shows one PackageVariant or PackageVariantSet: what it makes, and its conditions.
async function variantPage(seq, kind, name) {
  const resource = kind === 'pvs' ? 'packagevariantsets' : 'packagevariants';
  const o = await k8s('GET', nsPath(resource, name));
  if (seq !== renderSeq) return;
  const st = o.status || {};
  const facts = kind === 'pvs'
    ? [h('dt', {}, 'Upstream'), h('dd', {}, upstreamText(o.spec.upstream)),
      h('dt', {}, 'Variants'), h('dd', {}, `${st.readyVariants || 0} ready of ${st.variants || 0}`),
      (st.notReady || []).length ? [h('dt', {}, 'Not ready'), h('dd', {}, st.notReady.map((n) => h('div', {}, h('a', { href: `#/variants/pv/${encodeURIComponent(n)}` }, n))))] : '',
      st.rollout ? [h('dt', {}, 'Rollout'), h('dd', {}, JSON.stringify(st.rollout))] : '']
    : [h('dt', {}, 'Upstream'), h('dd', {}, upstreamText(o.spec.upstream)),
      h('dt', {}, 'Downstream'), h('dd', {}, `${o.spec.downstream.repo}/${o.spec.downstream.package}`),
      h('dt', {}, 'Revisions'), h('dd', {}, (st.downstreamTargets || []).map((d) => h('div', {}, revisionLink(d.name), d.renderStatus ? h('span', { class: 'muted small' }, ` ${d.renderStatus}`) : ''))),
      h('dt', {}, 'Policies'), h('dd', {}, `adoption ${o.spec.adoptionPolicy || 'adoptNone'}, deletion ${o.spec.deletionPolicy || 'delete'}${o.spec.allowConflicts ? ', conflicts allowed' : ''}`)];
  main.replaceChildren(
    h('div', { class: 'head' }, h('h1', {}, name), h('span', { class: 'badge Draft' }, kind === 'pvs' ? 'PackageVariantSet' : 'PackageVariant'), readyCell(o)),
    h('section', { class: 'card', 'aria-labelledby': 'variant-h' }, h('h2', { id: 'variant-h' }, 'Variant'), h('dl', { class: 'facts' }, facts)),
    h('section', { 'aria-labelledby': 'vcond-h' }, h('h2', { id: 'vcond-h' }, 'Conditions'), conditionsTable(st.conditions)),
  );
}

// ---------------------------------------------------------------- new drafts

// newDraft asks the local server for a PackageDraft (init, clone, copy, upgrade, rollback:
// the checks of kpoctl), follows it until the manager has made its revision, and opens it.
async function newDraft(button, body, what, url = '/ui/drafts') {
  button.disabled = true;
  try {
    const { draft } = await request('POST', url, { namespace, ...body });
    say('info', `${what}: waiting for the manager…`);
    const outcome = await followDraft(draft);
    if (outcome.ok) {
      carried = { kind: 'ok', message: `${what}: ${outcome.revision} is ready.` };
      location.hash = `#/revisions/${encodeURIComponent(outcome.revision)}`;
      return;
    }
    say('error', `${what} failed: ${outcome.message}`);
  } catch (e) {
    say('error', `${what} failed: ${e.message}`);
  }
  button.disabled = false;
}

// followDraft polls a PackageDraft until the manager made its revision or said why not. A
// draft that failed without a revision is removed, as kpoctl does, so it can be asked again.
async function followDraft(draft) {
  for (let i = 0; i < 120; i++) {
    const d = await k8s('GET', nsPath('packagedrafts', draft));
    const c = condition(d, 'Ready');
    const current = c && d.status.observedGeneration === d.metadata.generation;
    if (current && c.status === 'True' && d.status.packageRevision) return { ok: true, revision: d.status.packageRevision };
    if (current && c.status === 'False' && c.reason !== 'Progressing') {
      let removed = '';
      if (!d.status.packageRevision) {
        try { await k8s('DELETE', nsPath('packagedrafts', draft)); removed = ' Nothing was created (the PackageDraft was removed): fix the cause and try again.'; } catch { /* kept: the message says why it failed */ }
      }
      return { ok: false, message: `${c.reason}: ${c.message}${removed}` };
    }
    await sleep(500);
  }
  return { ok: false, message: `the manager has not made the revision yet; look at packagedraft ${draft} later.` };
}

const published = (pr) => ['Published', 'DeletionProposed'].includes(pr.status && pr.status.lifecycle) && pr.status.revision > 0;

// addPage adds a package: a new one (init), a clone of a published revision or of any Git
// package, or a copy (a new revision of a published package), as kpoctl rpkg init / clone /
// copy do.
async function addPage(seq, params) {
  const [repos, list, mayCreate] = await Promise.all([k8s('GET', nsPath('repositories')), k8s('GET', nsPath('packagerevisions')), mayI('create', 'packagedrafts')]);
  if (seq !== renderSeq) return;
  if (!mayCreate) { main.replaceChildren(h('h1', {}, 'Add package'), h('p', { class: 'alert info' }, `You may not create package drafts in namespace ${namespace}.`)); return; }
  const pub = list.items.filter(published).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const kind = ['init', 'clone', 'copy'].includes(params.get('kind')) ? params.get('kind') : 'init';
  const pubOptions = (selected) => pub.map((o) => h('option', { value: o.metadata.name, selected: o.metadata.name === selected }, `${o.metadata.name} (v${o.status.revision})`));
  const sections = {
    init: h('fieldset', { 'data-kind': 'init' }, h('legend', {}, 'New package'),
      h('div', { class: 'fields' }, field('init-description', 'Description'))),
    clone: h('fieldset', { 'data-kind': 'clone' }, h('legend', {}, 'Clone from'),
      h('div', { class: 'fields' },
        h('div', { class: 'field' }, h('label', { for: 'clone-from' }, 'Published revision'),
          h('select', { id: 'clone-from', name: 'clone-from' }, h('option', { value: '' }, 'A Git URL (below)'), pubOptions(params.get('from')))),
        field('clone-url', 'or Git URL', { type: 'url', placeholder: 'https://example.com/org/blueprints.git' }),
        field('clone-ref', 'Ref', { placeholder: 'main' }),
        field('clone-directory', 'Directory', { placeholder: 'path/to/package' }),
        field('clone-secret', 'Credentials Secret', { placeholder: 'none' }))),
    copy: h('fieldset', { 'data-kind': 'copy' }, h('legend', {}, 'Copy'),
      h('div', { class: 'fields' },
        h('div', { class: 'field' }, h('label', { for: 'copy-from' }, 'Published revision'),
          h('select', { id: 'copy-from', name: 'copy-from', required: true }, pubOptions(params.get('from')))))),
  };
  const target = h('div', { class: 'fields', id: 'target' },
    h('div', { class: 'field' }, h('label', { for: 'add-repository' }, 'Repository'),
      h('select', { id: 'add-repository', name: 'add-repository', required: true }, repos.items.map((r) => h('option', { value: r.metadata.name, selected: r.spec.deployment }, r.metadata.name)))),
    field('add-package', 'Package name', { required: true, pattern: '[a-z0-9]([-a-z0-9/]*[a-z0-9])?' }));
  const form = h('form', { id: 'add', class: 'card form', onsubmit: (e) => {
    e.preventDefault();
    const v = Object.fromEntries(new FormData(form));
    const body = { workspace: v['add-workspace'].trim(), repository: v['add-repository'], packageName: (v['add-package'] || '').trim(), source: {} };
    if (kind === 'init') body.source.init = { description: v['init-description'].trim() || undefined };
    if (kind === 'clone') {
      if (v['clone-from']) body.source.clone = { upstreamRef: { name: v['clone-from'] } };
      else {
        if (!v['clone-url'].trim()) { say('error', 'Name a published revision or a Git URL to clone.'); return; }
        body.source.clone = { git: { repo: v['clone-url'].trim(), ref: v['clone-ref'].trim() || 'main', directory: v['clone-directory'].trim() || undefined } };
        if (v['clone-secret'].trim()) body.source.clone.git.secretRef = { name: v['clone-secret'].trim() };
      }
    }
    if (kind === 'copy') {
      const src = pub.find((o) => o.metadata.name === v['copy-from']);
      if (!src) { say('error', 'Choose the published revision to copy.'); return; }
      body.repository = src.spec.repository;
      body.packageName = src.spec.packageName;
      body.source.copy = { sourceRef: { name: src.metadata.name } };
    }
    newDraft(form.querySelector('button[type=submit]'), body, { init: 'New package', clone: 'Clone', copy: 'Copy' }[kind]);
  } },
  h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'How to add the package', onkeydown: tabKeys },
    [['init', 'New'], ['clone', 'Clone'], ['copy', 'Copy (new revision)']].map(([k, t]) => h('button', { type: 'button', role: 'tab', id: `tab-${k}`, 'aria-selected': String(k === kind), tabindex: k === kind ? '0' : '-1', 'aria-controls': 'add-source',
      onclick: () => { location.hash = `#/add?kind=${k}`; } }, t))),
  h('div', { id: 'add-source', role: 'tabpanel', 'aria-labelledby': `tab-${kind}` }, sections[kind]),
  kind === 'copy' ? '' : target,
  h('div', { class: 'fields' }, field('add-workspace', 'Workspace', { required: true, pattern: '[a-z0-9]([-a-z0-9]*[a-z0-9])?', value: kind === 'copy' ? '' : 'first' }, 'The draft\'s name within the package, e.g. first, v2.')),
  h('button', { type: 'submit', class: 'primary' }, { init: 'Create package', clone: 'Clone', copy: 'Copy' }[kind]));
  main.replaceChildren(h('h1', {}, 'Add package'), form);
}

// ---------------------------------------------------------------- editor with live preview

async function editPage(seq, name, params) {
  const [pr, content] = await Promise.all([k8s('GET', nsPath('packagerevisions', name)), loadContent(name)]);
  if (seq !== renderSeq) return;
  if (content.error) { main.replaceChildren(h('h1', {}, `Edit ${name}`), h('p', { class: 'alert error', role: 'alert' }, content.error)); return; }
  if (pr.spec.lifecycle !== 'Draft') { main.replaceChildren(h('h1', {}, `Edit ${name}`), h('p', { class: 'alert info' }, `${name} is ${pr.spec.lifecycle}: only a Draft can be edited.`)); return; }
  const files = { ...content.files };
  let current = params.get('file') && files[params.get('file')] !== undefined ? params.get('file') : Object.keys(files).sort(kptfileFirst)[0];
  let dirty = false;

  const textarea = h('textarea', { id: 'editor', spellcheck: 'false', autocomplete: 'off' });
  const label = h('label', { for: 'editor' });
  const preview = h('pre', { id: 'preview', tabindex: '0', 'aria-label': 'Rendered file' });
  const previewState = h('p', { id: 'preview-state', class: 'muted small', 'aria-live': 'polite' }, 'Rendering…');
  const previewNote = h('p', { class: 'muted small' });
  const results = h('ul', { id: 'preview-results', class: 'results', 'aria-label': 'Function results' });
  const save = h('button', { class: 'primary', id: 'save', disabled: true, onclick: () => saveContent() }, 'Save');
  const edited = new Set();
  const tree = h('ul', { class: 'tree' });
  let buttons = [];
  let last = null;

  // renderTree lists the files, the edited ones marked.
  function renderTree() {
    buttons = Object.keys(files).sort(kptfileFirst).map((p) => h('button', { type: 'button', 'data-path': p, 'aria-current': String(p === current), onclick: () => open(p) },
      p, edited.has(p) ? h('span', { class: 'edited-mark' }, ' (edited)') : ''));
    tree.replaceChildren(...buttons.map((b) => h('li', {}, b)));
  }
  function changed(p) {
    edited.add(p);
    if (!dirty) { dirty = true; save.disabled = false; }
    clearTimeout(timer);
    timer = setTimeout(renderPreview, 250);
  }
  const newPath = h('input', { id: 'new-file', autocomplete: 'off', spellcheck: 'false', placeholder: 'dir/file.yaml' });
  const addForm = h('form', { class: 'add-file', onsubmit: (e) => {
    e.preventDefault();
    const p = newPath.value.trim();
    const bad = !p || p.startsWith('/') || p.endsWith('/') || p.split('/').some((seg) => seg === '' || seg === '.' || seg === '..');
    if (bad || files[p] !== undefined) { say('error', bad ? `"${p}" is not a relative file path` : `${p} exists already`); return; }
    clearStatus();
    files[p] = '';
    newPath.value = '';
    changed(p);
    open(p);
  } }, h('label', { for: 'new-file' }, 'New file'), newPath, h('button', { type: 'submit' }, 'Add'));
  const remove = h('button', { type: 'button', class: 'danger', id: 'remove-file', onclick: () => {
    delete files[current];
    changed(current);
    open(Object.keys(files).sort(kptfileFirst)[0]);
  } }, 'Remove file');

  // The form editor of a file of one resource of a common kind (ConfigMap, Namespace,
  // Service, Deployment, StatefulSet): its most edited fields as inputs; each change is
  // written into the file by the local server (every other field and comment kept) and shown
  // in the editor, then previewed like typing.
  const formBox = h('div', { id: 'file-form', class: 'card file-form', hidden: true });
  const formButton = h('button', { type: 'button', id: 'form-toggle', hidden: true, 'aria-expanded': 'false', 'aria-controls': 'file-form', onclick: () => toggleForm() }, 'Form');
  let formCheck = null;
  async function checkForm(p) {
    formButton.hidden = true;
    closeForm();
    try {
      const r = await request('POST', '/ui/form/read', { yaml: files[p] });
      if (p === current && r.kind) formButton.hidden = false;
    } catch { /* no form: the YAML editor stays */ }
  }
  function closeForm() { formBox.hidden = true; formButton.setAttribute('aria-expanded', 'false'); }
  // toggleForm opens the form on the file as it is now (read again), or closes it.
  async function toggleForm() {
    if (!formBox.hidden) { closeForm(); return; }
    const p = current;
    let f;
    try {
      f = await request('POST', '/ui/form/read', { yaml: files[p] });
    } catch (e) {
      say('error', `No form: ${e.message}`);
      return;
    }
    if (p !== current) return;
    if (!f.kind) { say('info', `No form for ${p}: ${f.why}`); return; }
    renderForm(f);
    formBox.hidden = false;
    formButton.setAttribute('aria-expanded', 'true');
    formBox.querySelector('input').focus();
  }
  // fieldId is the element id of a form field: form-metadata-name, form-data, ...
  const fieldId = (path) => `form-${path.join('-').replace(/[^A-Za-z0-9-]+/g, '-').replace(/-+$/, '')}`;
  function renderForm(f) {
    const error = h('p', { class: 'sev-error small', role: 'alert' });
    const readers = [];
    let timer2 = null;
    const write = () => { clearTimeout(timer2); timer2 = setTimeout(async () => {
      try {
        const r = await request('POST', '/ui/form/write', { yaml: files[current], fields: readers.map((read) => read()) });
        error.textContent = '';
        files[current] = r.yaml;
        textarea.value = r.yaml;
        if (!edited.has(current)) { changed(current); renderTree(); } else changed(current);
      } catch (e) {
        error.textContent = e.message;
      }
    }, 300); };
    const scalars = [];
    const maps = [];
    for (const field of f.fields) {
      const id = fieldId(field.path);
      if (field.type === 'map') {
        const rows = h('tbody', {});
        const row = (k, v) => {
          const n = rows.children.length + 1;
          const tr = h('tr', {},
            h('td', {}, h('input', { class: 'k', value: k, 'aria-label': `${field.label} key ${n}`, oninput: write })),
            h('td', {}, h('input', { class: 'v', value: v, 'aria-label': `${field.label} value ${n}`, oninput: write })),
            h('td', {}, h('button', { type: 'button', 'aria-label': `Remove ${field.label.toLowerCase()} key ${k || n}`, onclick: () => { tr.remove(); write(); } }, 'Remove')));
          rows.append(tr);
          return tr;
        };
        for (const [k, v] of field.entries || []) row(k, v);
        readers.push(() => ({ path: field.path, entries: [...rows.querySelectorAll('tr')].map((tr) => [tr.querySelector('.k').value, tr.querySelector('.v').value]) }));
        maps.push(h('table', { id, 'aria-label': field.label },
          h('caption', {}, field.label),
          h('thead', {}, h('tr', {}, ['Key', 'Value', ''].map((t) => h('th', { scope: 'col' }, t)))), rows),
        h('button', { type: 'button', id: `${id}-add`, onclick: () => row('', '').querySelector('.k').focus() }, `Add ${field.label.toLowerCase()} key`));
      } else {
        const input = h('input', { id, value: field.value, oninput: write, required: field.required,
          ...(field.type === 'integer' ? { type: 'number', min: '0', step: '1' } : {}) });
        readers.push(() => ({ path: field.path, value: input.value }));
        scalars.push(h('div', { class: 'field' }, h('label', { for: id }, field.label), input));
      }
    }
    formBox.replaceChildren(h('h2', { class: 'flush' }, f.kind), h('div', { class: 'fields' }, scalars), ...maps, error);
  }

  function open(p) {
    current = p;
    textarea.value = files[p];
    label.textContent = `Editing ${p}`;
    remove.hidden = p === 'Kptfile';
    checkForm(p);
    renderTree();
    showPreview();
  }
  function showPreview() {
    if (!last) return;
    if (last.files) {
      const out = last.files[current];
      preview.textContent = out === undefined ? `(${current} is not in the rendered package)` : out;
      preview.classList.toggle('changed', out !== files[current]);
      previewNote.textContent = out === files[current] ? `The render leaves ${current} as written.` : `Highlighted: the render changes ${current}.`;
    } else {
      preview.textContent = '';
    }
  }
  let timer = null;
  let inflight = 0;
  async function renderPreview() {
    const mine = ++inflight;
    previewState.textContent = 'Rendering…';
    try {
      const t0 = performance.now();
      const r = await request('POST', '/ui/render', { files });
      if (mine !== inflight) return;
      last = r;
      const ms = Math.round(performance.now() - t0);
      previewState.textContent = r.error ? `Render failed: ${r.error}` : `Rendered in ${ms} ms; ${r.results.length} function(s) ran. Not saved.`;
      previewState.className = r.error ? 'alert error small' : 'muted small';
      results.replaceChildren(...r.results.map((f) => h('li', {},
        h('code', {}, f.image), ' ',
        f.notPreviewed ? h('span', { class: 'sev-warning' }, 'not previewed (not built into kpo; the manager runs it on save)')
          : f.exitCode === 0 ? h('span', { class: 'state True' }, 'passed') : h('span', { class: 'state False' }, `failed (exit ${f.exitCode})`),
        f.error ? h('div', { class: 'small sev-error' }, f.error) : '',
        (f.results || []).map((it) => h('div', { class: `small sev-${it.severity}` }, `[${it.severity}] ${it.message}${it.resource ? ` (${it.resource})` : ''}`)))));
      showPreview();
    } catch (e) {
      if (mine === inflight) { previewState.textContent = `Preview unavailable: ${e.message}`; previewState.className = 'alert error small'; }
    }
  }
  textarea.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 's') { e.preventDefault(); if (!save.disabled) saveContent(); }
  });
  textarea.addEventListener('input', () => {
    // Typed YAML wins: the form closes, and is read again from the file when reopened.
    if (!formBox.hidden) closeForm();
    formButton.hidden = true;
    clearTimeout(formCheck);
    formCheck = setTimeout(() => checkForm(current), 500);
    files[current] = textarea.value;
    if (!edited.has(current)) { changed(current); renderTree(); } else changed(current);
  });

  // saveContent writes the content ConfigMap (a content edit, as kpoctl rpkg push), then
  // follows the revision until the manager has committed it or said why not.
  async function saveContent() {
    save.disabled = true;
    const before = pr.status.commit;
    try {
      const put = await request('PUT', '/ui/content', { namespace, name, resourceVersion: content.resourceVersion, files });
      content.resourceVersion = put.resourceVersion;
      say('info', `Saved ${name}; the manager is rendering and committing…`);
      const outcome = await followCommit(name, before);
      if (outcome.ok) {
        carried = { kind: 'ok', message: outcome.message };
        location.hash = `#/revisions/${encodeURIComponent(name)}`;
        return;
      }
      say('error', outcome.message);
      // The manager may have written the ConfigMap since: save the next attempt on its version.
      const fresh = await loadContent(name);
      if (!fresh.error) content.resourceVersion = fresh.resourceVersion;
    } catch (e) {
      say('error', `Not saved: ${e.message}`);
    }
    save.disabled = false;
  }

  main.replaceChildren(
    h('div', { class: 'head' }, h('h1', {}, `Edit ${name}`), lifecycleBadge(pr.spec.lifecycle),
      h('div', { class: 'actions' }, h('a', { class: 'button', href: `#/revisions/${encodeURIComponent(name)}` }, 'Cancel'), save)),
    h('p', { class: 'muted small' }, 'The preview renders the package with kpo\'s render engine as you type (built-in functions only); nothing is committed until you save (Ctrl+S).'),
    h('div', { class: 'editor' },
      h('div', {}, h('nav', { 'aria-label': 'Files' }, tree), addForm),
      h('section', { 'aria-label': 'Editor' }, h('div', { class: 'editor-head' }, label, h('div', { class: 'row-actions' }, formButton, remove)), formBox, textarea),
      h('section', { 'aria-labelledby': 'preview-h' }, h('h2', { id: 'preview-h', class: 'flush' }, 'Preview'), previewState, results, previewNote, preview)),
  );
  open(current);
  renderPreview();
  textarea.focus();
}

async function followCommit(name, before) {
  for (let i = 0; i < 60; i++) {
    const pr = await k8s('GET', nsPath('packagerevisions', name));
    const c = condition(pr, 'Ready');
    if (c && c.status === 'False' && c.reason !== 'Progressing' && i > 3) return { ok: false, message: `Nothing was committed: ${c.reason}: ${c.message}` };
    if (pr.status.commit && pr.status.commit !== before && c && c.status === 'True') return { ok: true, message: `Saved and committed ${pr.status.commit.slice(0, 12)}.` };
    await sleep(500);
  }
  return { ok: false, message: `${name}: the save is not committed yet; reload later.` };
}

// ---------------------------------------------------------------- routing

async function route() {
  const seq = ++renderSeq;
  const [path, query] = (location.hash.slice(1) || '/repositories').split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll('[data-nav]')) {
    const current = a.dataset.nav === parts[0] || (a.dataset.nav === 'packages' && ['revisions', 'diff', 'add'].includes(parts[0]));
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  try {
    if (parts[0] === 'packages') await packagesPage(seq, params);
    else if (parts[0] === 'add') await addPage(seq, params);
    else if (parts[0] === 'variants' && parts[2]) await variantPage(seq, parts[1], parts[2]);
    else if (parts[0] === 'variants') await variantsPage(seq);
    else if (parts[0] === 'diff') await diffPage(seq, params);
    else if (parts[0] === 'revisions' && parts[2] === 'edit') await editPage(seq, parts[1], params);
    else if (parts[0] === 'revisions' && parts[1]) await revisionPage(seq, parts[1]);
    else await repositoriesPage(seq);
    document.title = `${main.querySelector('h1') ? main.querySelector('h1').textContent : ''} · kpo`;
    if (refocus && seq === renderSeq) { const el = document.querySelector(refocus); refocus = null; if (el) el.focus(); }
  } catch (e) {
    if (seq !== renderSeq) return;
    main.replaceChildren(h('h1', {}, 'Error'), h('p', { class: 'alert error', role: 'alert' }, e.message));
  }
}

// signInPage asks for a bearer token (the in-cluster UI): the server checks it with the API
// server and keeps it in an HttpOnly cookie; every call is then made with it alone.
function signInPage(message) {
  const token = h('textarea', { id: 'token', name: 'token', rows: 4, required: true, spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'token-hint' });
  const form = h('form', { id: 'signin', class: 'card form', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await request('POST', '/ui/signin', { token: token.value });
      token.value = '';
      location.reload();
    } catch (err) {
      say('error', `Not signed in: ${err.message}`);
    }
  } },
  h('div', { class: 'field' }, h('label', { for: 'token' }, 'Bearer token'), token,
    h('span', { id: 'token-hint', class: 'muted small' }, 'Your own Kubernetes token (for example the output of kubectl create token, or your identity provider\'s ID token). Every action is made with it; it is kept in an HttpOnly cookie of this site until you sign out.')),
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  main.replaceChildren(h('h1', {}, 'Sign in'), message ? h('p', { class: 'alert error', role: 'alert' }, message) : '', form);
  token.focus();
}

async function start() {
  try {
    const s = await request('GET', '/ui/session');
    namespace = s.namespace;
    if (s.signIn === 'token') {
      if (!s.user) { signInPage(); return; }
      document.getElementById('who').replaceChildren(h('span', { class: 'small' }, s.user), ' ',
        h('button', { type: 'button', class: 'small', onclick: async () => { await request('POST', '/ui/signout', {}); location.reload(); } }, 'Sign out'));
    }
  } catch (e) {
    if (e.code === 401 && e.message.includes('sign in again')) { signInPage(e.message); return; }
    main.replaceChildren(h('h1', {}, 'Not signed in'), h('p', { class: 'alert error', role: 'alert' }, e.message));
    return;
  }
  nsInput.value = namespace;
  document.getElementById('namespace-form').addEventListener('submit', (e) => {
    e.preventDefault();
    namespace = nsInput.value.trim() || 'default';
    clearStatus();
    route();
  });
  window.addEventListener('hashchange', () => {
    if (carried) { say(carried.kind, carried.message); carried = null; } else clearStatus();
    route(); window.scrollTo(0, 0); main.focus({ preventScroll: true }); });
  route();
}

start();
