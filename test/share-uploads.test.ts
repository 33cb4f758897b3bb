/**
 * tus uploads into folders shared with the uploader (`/Shared/<name>/…`): the file lands
 * in the owner's tree and quota, only the uploader sees the upload session, and a viewer
 * or a stranger creates nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import request from 'supertest';
import { encodeBatch } from '../contract/batch-client.js';
import {
  BATCH_CONTENT_TYPE,
  type UploadBatchResponse,
  type UploadInfo,
} from '../contract/schemas/uploads.js';
import { resolvePath } from '../core/tree.js';
import { binaryParser } from './fs-helpers.js';
import { createTestUser, type TestUser } from './helpers/app.js';
import { putFile } from './share-fixtures.js';
import {
  OCTET,
  TUS,
  bytesOf,
  childrenOf,
  idOf,
  metadataHeader,
  sha256Of,
  startHarness,
  waitForUpload,
  type UploadHarness,
} from './uploads-harness.js';

describe('uploads into folders shared with the uploader', () => {
  let h: UploadHarness;
  let owner: TestUser;
  let editor: TestUser;
  let viewer: TestUser;
  let stranger: TestUser;

  beforeEach(async () => {
    h = await startHarness();
    owner = await createTestUser(h.t, { quota: 10_000 });
    // The editor's own quota is tiny: what they upload into the share is the owner's.
    editor = await createTestUser(h.t, { quota: 10 });
    viewer = await createTestUser(h.t);
    stranger = await createTestUser(h.t);
    await putFile(h.t, owner, '/Team/plan.txt', 'the plan');
    await putFile(h.t, owner, '/Private/diary.txt', 'dear diary');
    await grant(editor, 'editor');
    await grant(viewer, 'viewer');
  });
  afterEach(async () => {
    await h.close();
  });

  async function grant(to: TestUser, role: 'viewer' | 'editor', path = '/Team'): Promise<void> {
    const res = await request(h.t.app)
      .post('/api/v1/shares/users')
      .set(owner.headers)
      .send({ path, email: to.email, role });
    expect(res.status).toBe(202);
  }

  function create(
    as: TestUser,
    pairs: Record<string, string | number>,
    length: number,
    body?: Buffer,
  ): Promise<request.Response> {
    const req = request(h.app)
      .post('/api/v1/uploads')
      .set(TUS)
      .set(as.headers)
      .set('Upload-Length', String(length))
      .set('Upload-Metadata', metadataHeader(pairs));
    return body === undefined ? req : req.set('Content-Type', OCTET).send(body);
  }

  function patch(as: TestUser, id: string, offset: number, body: Buffer): Promise<request.Response> {
    return request(h.app)
      .patch(`/api/v1/uploads/${id}`)
      .set(TUS)
      .set(as.headers)
      .set('Content-Type', OCTET)
      .set('Upload-Offset', String(offset))
      .send(body);
  }

  async function used(user: TestUser): Promise<number> {
    return (await h.t.deps.metadata.getUserById(user.id))?.storageUsed ?? -1;
  }

  async function names(user: TestUser, path = '/'): Promise<string[]> {
    const folder = await resolvePath(h.t.deps.metadata, user.id, path);
    return (await childrenOf(h, user.id, folder?.id ?? null)).map((n) => n.name).sort();
  }

  it("commits an editor's upload into the owner's tree and quota; only the editor sees the upload", async () => {
    const bytes = bytesOf(3000, 7);
    const ownerBefore = await used(owner);
    const editorBefore = await used(editor);
    const created = await create(editor, { path: '/Shared/Team/sub/x.txt' }, bytes.length);
    expect(created.status).toBe(201);
    const id = idOf(created.headers.location);
    expect((await patch(editor, id, 0, bytes.subarray(0, 1000))).status).toBe(204);
    const head = await request(h.app).head(`/api/v1/uploads/${id}`).set(TUS).set(editor.headers);
    expect(head.status).toBe(200);
    expect(head.headers['upload-offset']).toBe('1000');
    const last = await patch(editor, id, 1000, bytes.subarray(1000));
    expect(last.status).toBe(204);
    expect(last.headers['upload-offset']).toBe(String(bytes.length));

    const info = await waitForUpload(h, editor.headers, id);
    expect(info).toMatchObject({ status: 'ready', path: '/Shared/Team/sub/x.txt', error: null });

    // The owner has /Team/sub/x.txt with exactly these bytes; the editor's tree is untouched.
    const node = await resolvePath(h.t.deps.metadata, owner.id, '/Team/sub/x.txt');
    expect(node).toMatchObject({
      id: info.fileId,
      kind: 'file',
      size: bytes.length,
      sha256: sha256Of(bytes),
    });
    const content = await request(h.t.app)
      .get(`/api/v1/files/${info.fileId}/content`)
      .set(owner.headers)
      .buffer(true)
      .parse(binaryParser);
    expect(content.status).toBe(200);
    expect((content.body as Buffer).equals(bytes)).toBe(true);
    expect(await names(editor)).toEqual([]);
    expect(await used(owner)).toBe(ownerBefore + bytes.length);
    expect(await used(editor)).toBe(editorBefore);

    // The editor reads it through the mount and got the change in their feed.
    const stat = await request(h.t.app)
      .get('/api/v1/fs/stat')
      .query({ path: '/Shared/Team/sub/x.txt' })
      .set(editor.headers);
    expect(stat.body).toMatchObject({ id: info.fileId, size: bytes.length });
    const feed = await request(h.t.app).get('/api/v1/changes').query({ cursor: '0' }).set(editor.headers);
    expect(JSON.stringify(feed.body)).toContain(info.fileId as string);

    // The upload id is unknown to everybody but the editor, the owner included.
    for (const other of [owner, stranger]) {
      const otherHead = await request(h.app).head(`/api/v1/uploads/${id}`).set(TUS).set(other.headers);
      expect(otherHead.status).toBe(404);
      const otherGet = await request(h.app).get(`/api/v1/uploads/${id}`).set(TUS).set(other.headers);
      expect(otherGet.status).toBe(404);
      expect((await patch(other, id, bytes.length, Buffer.from('x'))).status).toBe(404);
      const del = await request(h.app).delete(`/api/v1/uploads/${id}`).set(TUS).set(other.headers);
      expect(del.status).toBe(404);
    }
    const mine = await request(h.app).get(`/api/v1/uploads/${id}`).set(TUS).set(editor.headers);
    expect(mine.status).toBe(200);
    expect((mine.body as UploadInfo).fileId).toBe(info.fileId);
    expect((await request(h.app).head(`/api/v1/uploads/${id}`).set(TUS).set(editor.headers)).status).toBe(
      200,
    );

    // The audit entry is the editor's and names the owner.
    const audit = await h.t.deps.metadata.listAudit(editor.id, { limit: 10 });
    expect(audit.items.find((e) => e.action === 'file.upload')?.details).toMatchObject({
      uploadId: id,
      ownerId: owner.id,
      fileId: info.fileId,
    });
  });

  it('lets the editor cancel their upload; nobody else can', async () => {
    const created = await create(editor, { path: '/Shared/Team/half.bin' }, 10);
    const id = idOf(created.headers.location);
    expect((await patch(editor, id, 0, bytesOf(4))).status).toBe(204);
    const byOwner = await request(h.app).delete(`/api/v1/uploads/${id}`).set(TUS).set(owner.headers);
    expect(byOwner.status).toBe(404);
    const byEditor = await request(h.app).delete(`/api/v1/uploads/${id}`).set(TUS).set(editor.headers);
    expect(byEditor.status).toBe(204);
    expect(await h.t.deps.blobs.stagingSize(id)).toBeNull();
    expect(await names(owner, '/Team')).toEqual(['plan.txt']);
  });

  it('refuses a viewer with 403 and a stranger with 404, creating nothing', async () => {
    const before = await names(owner, '/Team');
    const asViewer = await create(viewer, { path: '/Shared/Team/new/x.txt' }, 3, Buffer.from('abc'));
    expect(asViewer.status).toBe(403);
    expect(asViewer.body.error.code).toBe('FORBIDDEN');
    const asStranger = await create(stranger, { path: '/Shared/Team/new/x.txt' }, 3, Buffer.from('abc'));
    expect(asStranger.status).toBe(404);
    expect(asStranger.body.error.code).toBe('NOT_FOUND');
    // The filename/folder form resolves the same way.
    const byFolder = await create(viewer, { filename: 'y.txt', folder: '/Shared/Team' }, 1);
    expect(byFolder.status).toBe(403);

    expect(await names(owner, '/Team')).toEqual(before);
    expect(await names(viewer)).toEqual([]);
    expect(await names(stranger)).toEqual([]);
    expect(await h.t.deps.blobs.stat(sha256Of(Buffer.from('abc')))).toBeNull();
  });

  it('never creates folders above the shared one and refuses to replace a mount', async () => {
    const onMount = await create(editor, { path: '/Shared/Team' }, 1);
    expect(onMount.status).toBe(409);
    // A shared file is not a folder to upload into.
    await putFile(h.t, owner, '/notes.txt', 'notes');
    await grant(editor, 'editor', '/notes.txt');
    const intoFile = await create(editor, { path: '/Shared/notes.txt/x.txt' }, 1);
    expect(intoFile.status).toBe(409);
    // `..` cannot climb out of the mount.
    const climb = await create(editor, { path: '/Shared/Team/../Private/x.txt' }, 1);
    expect(climb.status).toBe(400);
    expect(await names(owner)).toEqual(['Private', 'Team', 'notes.txt']);
    expect(await names(owner, '/Private')).toEqual(['diary.txt']);
    expect(await names(editor)).toEqual([]);
  });

  it("enforces the owner's quota (507), not the editor's", async () => {
    const small = await create(editor, { path: '/Shared/Team/fits.bin' }, 100, bytesOf(100, 2));
    expect(small.status).toBe(201);
    expect((await waitForUpload(h, editor.headers, idOf(small.headers.location))).status).toBe('ready');
    const over = await create(editor, { path: '/Shared/Team/big/too-big.bin' }, 10_000);
    expect(over.status).toBe(507);
    expect(over.body.error.code).toBe('QUOTA_EXCEEDED');
    // Nothing about the owner's usage is told to the editor, and nothing was created.
    expect(over.body.error.details).toBeUndefined();
    expect(await names(owner, '/Team')).toEqual(['fits.bin', 'plan.txt']);
  });

  it("deduplicates only against the owner's content the editor can already read", async () => {
    // The owner's file inside the share: committed at once, no byte sent.
    const plan = Buffer.from('the plan');
    const known = await create(
      editor,
      { path: '/Shared/Team/copy.txt', sha256: sha256Of(plan) },
      plan.length,
    );
    expect(known.status).toBe(201);
    expect(known.headers['aio-upload-status']).toBe('ready');
    const copy = await resolvePath(h.t.deps.metadata, owner.id, '/Team/copy.txt');
    expect(copy).toMatchObject({ sha256: sha256Of(plan), size: plan.length });

    // The owner's private file, and the editor's own content: the bytes must be sent.
    const diary = Buffer.from('dear diary');
    const secret = await create(
      editor,
      { path: '/Shared/Team/d.txt', sha256: sha256Of(diary) },
      diary.length,
    );
    expect(secret.status).toBe(201);
    expect(secret.headers['aio-upload-status']).toBeUndefined();
    expect(secret.headers['upload-offset']).toBeUndefined();
    const own = Buffer.from('mine');
    await putFile(h.t, editor, '/mine.txt', own);
    const editorsOwn = await create(
      editor,
      { path: '/Shared/Team/m.txt', sha256: sha256Of(own) },
      own.length,
    );
    expect(editorsOwn.status).toBe(201);
    expect(editorsOwn.headers['aio-upload-status']).toBeUndefined();
    expect(await names(owner, '/Team')).toEqual(['copy.txt', 'plan.txt']);
  });

  it('stops taking bytes once the share is revoked', async () => {
    const created = await create(editor, { path: '/Shared/Team/late.bin' }, 8);
    const id = idOf(created.headers.location);
    expect((await patch(editor, id, 0, bytesOf(4))).status).toBe(204);
    const shares = await request(h.t.app).get('/api/v1/shares').set(owner.headers);
    const share = (shares.body.items as { id: string; grantee: { id: string } | null }[]).find(
      (s) => s.grantee?.id === editor.id,
    );
    const revoked = await request(h.t.app).delete(`/api/v1/shares/${share?.id}`).set(owner.headers);
    expect(revoked.status).toBe(204);
    expect((await patch(editor, id, 4, bytesOf(4, 9))).status).toBe(404);
    expect(await names(owner, '/Team')).toEqual(['plan.txt']);
  });

  it("takes batches into the shared folder for editors only, on the owner's quota", async () => {
    const send = async (as: TestUser, files: Array<{ path: string; bytes: Buffer }>) =>
      request(h.app)
        .post('/api/v1/uploads/batch')
        .set(as.headers)
        .set('Content-Type', BATCH_CONTENT_TYPE)
        .send(encodeBatch(files.map((f) => ({ ...f, sha256: sha256Of(f.bytes) }))));
    const a = bytesOf(30, 3);
    const b = bytesOf(40, 4);
    const res = await send(editor, [
      { path: '/Shared/Team/batch/a.bin', bytes: a },
      { path: '/Shared/Private/x.bin', bytes: b },
    ]);
    expect(res.status).toBe(202);
    const answer = res.body as UploadBatchResponse;
    expect(answer.files.map((f) => [f.status, f.error])).toEqual([
      ['processing', null],
      ['failed', 'NOT_FOUND'],
    ]);
    const done = await request(h.app)
      .get(`/api/v1/uploads/batch/${answer.batchId}?wait=10`)
      .set(editor.headers);
    expect(done.body).toMatchObject({
      done: true,
      files: [{ path: '/Shared/Team/batch/a.bin', status: 'ready' }],
    });
    expect(await names(owner, '/Team/batch')).toEqual(['a.bin']);
    // The owner cannot see the editor's batch; a viewer's batch creates nothing.
    expect(
      (await request(h.app).get(`/api/v1/uploads/batch/${answer.batchId}`).set(owner.headers)).status,
    ).toBe(404);
    const viewed = await send(viewer, [{ path: '/Shared/Team/v.bin', bytes: b }]);
    expect((viewed.body as UploadBatchResponse).files[0]).toMatchObject({
      status: 'failed',
      error: 'FORBIDDEN',
    });
    expect(await names(owner, '/Team')).toEqual(['batch', 'plan.txt']);
  });
});
