// Drives Strongroom's /v1 with node-vault (npm), unmodified, as a Node user would.
// Usage: node node_vault_suite.js BASE_URL ADMIN_TOKEN PROD_ONLY_TOKEN
'use strict';
const assert = require('node:assert/strict');
const nodeVault = require('node-vault');

const [base, adminToken, prodToken] = process.argv.slice(2);

async function main() {
  const vault = nodeVault({ apiVersion: 'v1', endpoint: base, token: adminToken });
  const written = await vault.write('secret/data/prod/NODE_KEY', { data: { value: 'node-one' } });
  assert.equal(written.data.version, 1);
  await vault.write('secret/data/prod/NODE_KEY', { data: { value: 'node-two' }, options: { cas: 1 } });
  const read = await vault.read('secret/data/prod/NODE_KEY');
  assert.deepEqual(read.data.data, { value: 'node-two' });
  assert.equal(read.data.metadata.version, 2);
  const first = await vault.read('secret/data/prod/NODE_KEY?version=1');
  assert.equal(first.data.data.value, 'node-one');
  await assert.rejects(
    vault.write('secret/data/prod/NODE_KEY', { data: { value: 'lost' }, options: { cas: 1 } }),
    (e) => e.response.statusCode === 400,
  );
  await vault.write('secret/data/prod/node/map', { data: { a: '1', b: '2' } });
  assert.deepEqual((await vault.read('secret/data/prod/node/map')).data.data, { a: '1', b: '2' });
  const listed = await vault.list('secret/metadata/prod');
  // (the hvac suite ran first on the same server: its keys are listed too)
  assert.deepEqual(listed.data.keys, ['DB_URL', 'NATIVE', 'NEW', 'NODE_KEY', 'node/']);
  const viaQuery = nodeVault({ endpoint: base, token: adminToken, noCustomHTTPVerbs: true });
  assert.deepEqual((await viaQuery.list('secret/metadata/prod/node')).data.keys, ['map']);
  assert.deepEqual((await vault.read('secret/data/prod/NATIVE')).data.data, { value: 'written-natively' });
  const meta = await vault.read('secret/metadata/prod/NODE_KEY');
  assert.equal(meta.data.current_version, 2);
  await vault.delete('secret/metadata/prod/node/map');
  await assert.rejects(vault.read('secret/data/prod/node/map'), (e) => e.response.statusCode === 404);
  const self = await vault.tokenLookupSelf();
  assert.equal(self.data.type, 'service');
  const scoped = nodeVault({ endpoint: base, token: prodToken });
  assert.equal((await scoped.read('secret/data/prod/NODE_KEY')).data.data.value, 'node-two');
  await assert.rejects(scoped.read('secret/data/staging/NODE_KEY'), (e) => e.response.statusCode === 403);
  await assert.rejects(
    scoped.write('secret/data/prod/NODE_KEY', { data: { value: 'no' } }),
    (e) => e.response.statusCode === 403,
  );
  console.log('node-vault: every check passed');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
