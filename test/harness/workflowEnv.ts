/**
 * Workflow tests without a database: the real workflows (bundled from src/workflows) run
 * against Temporal's time-skipping test server, with FAKE activities that record every
 * call. The fakes are typed loosely on purpose: these tests depend only on the workflows'
 * exported names and inputs and on the activity, signal, query and Update names, so
 * moving activity modules around does not break them.
 *
 * Time is virtual: timers (approval deadlines, escalations, retry backoffs) fire when the
 * test awaits a result or calls env.sleep, never after wall-clock waits.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure, WorkflowFailedError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, makeTelemetryFilterString, Runtime, Worker } from '@temporalio/worker';
import { testServerPath } from './testServer';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Fake = (...args: any[]) => Promise<unknown>;
export type Fakes = Record<string, Fake>;

export interface Call {
  name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  args: any[];
}

/** Every activity the workflows call, by name (read from src/workflows/*.ts). */
export const ACTIVITY_NAMES = [
  'acquireBackupLock',
  'releaseBackupLock',
  'inspectCluster',
  'dumpFull',
  'publishBackup',
  'planBinlogBackup',
  'copyBinlogs',
  'markChainBroken',
  'recordBackupOutcome',
  'discardStaging',
  'notify',
  'approvalPolicy',
  'callerIdentities',
  'planRestore',
  'scanRestoreWindow',
  'checkRestoreTarget',
  'restoreDatabase',
  'verifyDatabase',
  'moveTables',
  'captureTriggers',
  'swapTables',
  'dropRestoreTarget',
  'dropRestoredTables',
  'planArchive',
  'ensureArchiveDestination',
  'moveArchiveBatches',
  'verifyArchive',
  'storeArchiveReport',
  'planRetention',
  'deleteBackups',
  'planDrill',
  'provisionSandbox',
  'restoreIntoSandbox',
  'checkSandbox',
  'runSampleQueries',
  'teardownSandbox',
  'storeDrillReport',
  'listVerifyClusters',
  'listBackupsToVerify',
  'verifyBackup',
  'findOrphans',
  'storeVerifyReport',
  'archiveBinlogs',
  'verifyBinlogArchive',
  'pruneBinlogArchive',
  'planInstanceRestore',
  'claimTargetDatabases',
  'restoreOnto',
  'verifyOnto',
] as const;

/**
 * Fake activities that record their calls. Activities a test does not fake fail at once
 * (non-retryable NotFaked), so an unexpected call shows up as a failure naming it instead
 * of a run retrying an unregistered activity until the test times out. `notify` is faked
 * by default (it records; notifications are asserted through the calls).
 */
export class FakeActivities {
  readonly calls: Call[] = [];
  readonly activities: Fakes;

  constructor(fakes: Fakes) {
    const all: Fakes = {};
    const defaults: Fakes = { notify: async () => undefined, pruneBinlogArchive: async () => ({ removed: [] }),
      verifyBinlogArchive: async () => ({ timelines: 0, segments: 0, bytesRead: 0, problems: [] }),
    };
    for (const name of new Set<string>([...ACTIVITY_NAMES, ...Object.keys(fakes)])) {
      const impl =
        fakes[name] ??
        defaults[name] ??
        (async () => {
          throw ApplicationFailure.nonRetryable(`activity ${name} is not faked in this test`, 'NotFaked');
        });
      all[name] = async (...args: unknown[]) => {
        this.calls.push({ name, args });
        return impl(...args);
      };
    }
    this.activities = all;
  }

  /** Names of the activities called, in order. */
  names(): string[] {
    return this.calls.map((c) => c.name);
  }

  /** The first argument of every call of one activity, in order. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  inputs(name: string): any[] {
    return this.calls.filter((c) => c.name === name).map((c) => c.args[0]);
  }

  count(name: string): number {
    return this.calls.filter((c) => c.name === name).length;
  }

  /** The notifications sent, as `severity event`, in order. */
  notifications(): string[] {
    return this.inputs('notify').map((n: { severity: string; event: string }) => `${n.severity} ${n.event}`);
  }
}

const SRC = path.resolve(__dirname, '..', '..', 'src');
const WORKFLOWS_PATH = require.resolve(path.join(SRC, 'workflows'));

/**
 * The custom search attributes the workflows upsert, as src/ defines them
 * (`defineSearchAttributeKey('Name', SearchAttributeType.KEYWORD)`, wherever that file
 * lives): the test server refuses a workflow task that upserts one it does not know.
 */
export function searchAttributesDefinedInSrc(dir = SRC): Record<string, temporal.api.enums.v1.IndexedValueType> {
  const found: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  const types = temporal.api.enums.v1.IndexedValueType as unknown as Record<string, temporal.api.enums.v1.IndexedValueType>;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) Object.assign(found, searchAttributesDefinedInSrc(file));
    else if (entry.name.endsWith('.ts')) {
      for (const m of readFileSync(file, 'utf8').matchAll(/defineSearchAttributeKey\(\s*['"]([A-Za-z0-9_]+)['"]\s*,\s*SearchAttributeType\.([A-Z_]+)\s*\)/g)) {
        const type = types[`INDEXED_VALUE_TYPE_${m[2]}`];
        if (type === undefined) throw new Error(`${file}: unknown search attribute type ${m[2]}`);
        found[m[1] as string] = type;
      }
    }
  }
  return found;
}

const quiet = new DefaultLogger(process.env.DBOPS_TEST_LOG_LEVEL ? (process.env.DBOPS_TEST_LOG_LEVEL.toUpperCase() as 'INFO') : 'ERROR');

function installQuietRuntime(): void {
  try {
    // Core's own logs (e.g. the test server not advertising newer capabilities) go through the quiet logger too.
    Runtime.install({ logger: quiet, telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }), forward: {} } } });
  } catch {
    // A runtime already exists in this process (another test file): keep it.
  }
}

/** Every file under dir, sorted (what the workflow bundle is built from, src/ side). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]))
    .sort();
}

/**
 * The workflows bundled from src/workflows, once per content: test files share a bundle
 * (each would otherwise spend seconds in webpack), keyed by every file in src/ and the
 * lockfile, so an edit anywhere bundles again.
 */
async function workflowBundle(): Promise<{ codePath: string }> {
  const hash = createHash('sha256');
  for (const file of [...filesUnder(SRC), path.join(SRC, '..', 'package-lock.json')]) {
    hash.update(path.relative(SRC, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  const dir = path.join(tmpdir(), 'dbops-workflow-bundles');
  const codePath = path.join(dir, `${hash.digest('hex').slice(0, 32)}.js`);
  if (!existsSync(codePath)) {
    const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet });
    mkdirSync(dir, { recursive: true });
    const partial = `${codePath}.${process.pid}.partial`;
    writeFileSync(partial, code);
    renameSync(partial, codePath);
  }
  return { codePath };
}

/**
 * The time-skipping test server, started here rather than by the SDK, whose helper gives it
 * a fixed five seconds to answer: a busy two-core machine misses that now and then. The
 * environment then connects to it the way the SDK's own helper does (its factory with an
 * existing server and the test service on), which the SDK types as private.
 */
async function startTimeSkippingServer(): Promise<{ address: string; stop: () => Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const net = await import('node:net');
  const port = await new Promise<number>((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
  const child = spawn(testServerPath(), [String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the time-skipping test server exited at start: ${stderr.trim().slice(-500)}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return { address: `127.0.0.1:${port}`, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the time-skipping test server did not listen on ${port} within 120 s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

type EnvironmentFactory = { create(options: { server: { type: 'existing' }; address: string; namespace: string; supportsTimeSkipping: true }): Promise<TestWorkflowEnvironment> };

function connectTimeSkipping(address: string): Promise<TestWorkflowEnvironment> {
  return (TestWorkflowEnvironment as unknown as EnvironmentFactory).create({ server: { type: 'existing' }, address, namespace: 'default', supportsTimeSkipping: true });
}

/** One time-skipping test server per test file; the workflow bundle is shared. */
export class WorkflowTestEnv {
  private constructor(
    readonly env: TestWorkflowEnvironment,
    private readonly bundle: { codePath: string },
    private readonly stopServer: () => Promise<void>,
  ) {}

  static async start(): Promise<WorkflowTestEnv> {
    installQuietRuntime();
    const [server, bundle] = await Promise.all([startTimeSkippingServer(), workflowBundle()]);
    let env: TestWorkflowEnvironment;
    try {
      env = await connectTimeSkipping(server.address);
    } catch (error) {
      await server.stop();
      throw error;
    }
    const searchAttributes = searchAttributesDefinedInSrc();
    if (Object.keys(searchAttributes).length > 0) {
      await env.connection.operatorService.addSearchAttributes({ namespace: env.namespace ?? 'default', searchAttributes });
    }
    return new WorkflowTestEnv(env, bundle, server.stop);
  }

  get client() {
    return this.env.client;
  }

  async teardown(): Promise<void> {
    await this.env.teardown();
    await this.stopServer();
  }

  /**
   * Runs fn while a worker with the fakes serves a fresh task queue; fn gets a starter for
   * workflows on it (by the workflow function's exported name). A test that has not
   * finished after limitMs of real time fails with the calls made so far (a hang is a
   * failure to read, never a jest timeout with a worker left running); virtual time is
   * what the workflows see, so this limit never decides an outcome.
   */
  async run<T>(fakes: FakeActivities, fn: (ctx: { taskQueue: string; start: Starter }) => Promise<T>, limitMs = 45_000): Promise<T> {
    const taskQueue = `wf-test-${randomUUID()}`;
    const worker = await Worker.create({
      connection: this.env.nativeConnection,
      namespace: this.env.namespace ?? 'default',
      taskQueue,
      workflowBundle: this.bundle,
      activities: fakes.activities,
      shutdownGraceTime: '1s',
      // As the real worker: a cancellation reaches a heartbeating activity within moments.
      maxHeartbeatThrottleInterval: '100 milliseconds',
    });
    const start: Starter = (workflowType, input, options = {}) =>
      this.env.client.workflow.start(workflowType, {
        taskQueue,
        workflowId: options.workflowId ?? `${workflowType}-${randomUUID()}`,
        args: [input],
      });
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not finished after ${limitMs / 1000} s of real time; activities called: ${fakes.names().join(', ') || 'none'}`)), limitMs);
    });
    try {
      return await worker.runUntil(Promise.race([fn({ taskQueue, start }), limit]));
    } finally {
      clearTimeout(timer);
    }
  }
}

export type Starter = (workflowType: string, input: unknown, options?: { workflowId?: string }) => Promise<WorkflowHandleWithFirstExecutionRunId>;

/**
 * How a run failed: the first ApplicationFailure in the chain (what the workflow threw, or
 * what the activity it let through threw), and every failure's type on the way down.
 */
export async function failureOf(result: Promise<unknown>): Promise<{ type: string | undefined; message: string; nonRetryable: boolean; chain: string[] }> {
  let error: unknown;
  try {
    await result;
  } catch (e) {
    error = e;
  }
  if (!(error instanceof WorkflowFailedError)) throw new Error(`expected the run to fail, got ${error === undefined ? 'a result' : String(error)}`);
  const chain: Error[] = [];
  for (let c: unknown = error.cause; c instanceof Error; c = c.cause) chain.push(c);
  const app = chain.find((c): c is ApplicationFailure => c instanceof ApplicationFailure);
  if (!app) throw new Error(`expected an ApplicationFailure, got ${chain.map(String).join(' <- ')}`);
  return {
    type: app.type ?? undefined,
    message: app.message,
    nonRetryable: app.nonRetryable === true,
    chain: chain.map((c) => (c instanceof ApplicationFailure ? `ApplicationFailure:${c.type}` : c.constructor.name)),
  };
}

const EventType = temporal.api.enums.v1.EventType;

/**
 * The run's result (time skips while it is awaited), or, as soon as a workflow task fails,
 * an error with that failure: a workflow that throws outside its failure path retries its
 * task forever and would otherwise only show up as a hang.
 */
export async function resultOf<T = unknown>(handle: WorkflowHandle): Promise<T> {
  let watching = true;
  const watch = (async (): Promise<never> => {
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      if (!watching) return new Promise<never>(() => undefined);
      const failures = await workflowTaskFailures(handle).catch(() => []);
      if (failures.length > 0) throw new Error(`workflow task failed (the run is wedged, not failed): ${failures[0]}`);
    }
  })();
  try {
    return (await Promise.race([handle.result(), watch])) as T;
  } finally {
    watching = false;
  }
}

/** Failed workflow tasks in the run's history (a wedged run shows them; a clean failure has none). */
export async function workflowTaskFailures(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    .map((e) => e.workflowTaskFailedEventAttributes?.failure?.message ?? '?');
}

/** Polls a query until it satisfies pred (the worker needs a moment of real time to get there; virtual time does not move). */
export async function waitForQuery<T>(handle: WorkflowHandle, query: string, pred: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  let last: T | undefined;
  for (;;) {
    try {
      last = await handle.query<T>(query);
      if (pred(last)) return last;
    } catch {
      // not yet started or the handler is not installed yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last ${query}: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const MINUTE = 60_000;

/** The clients of two operators, as the CLI names itself (dbops-cli/<user>@<host>). */
export const IDENTITY = { alice: 'dbops-cli/alice@alice-laptop', bob: 'dbops-cli/bob@bob-laptop' } as const;

/**
 * One time-skipping environment for the test file: started before its tests, torn down
 * after them. The returned object forwards to it (usable inside tests and hooks only).
 */
export function useWorkflowTestEnv(): WorkflowTestEnv {
  jest.setTimeout(60_000);
  let env: WorkflowTestEnv | undefined;
  beforeAll(async () => {
    env = await WorkflowTestEnv.start();
  });
  afterAll(async () => {
    await env?.teardown();
  });
  return new Proxy({} as WorkflowTestEnv, {
    get(_target, key) {
      if (!env) throw new Error('the workflow test environment is not started: use it inside a test or a hook');
      const value: unknown = Reflect.get(env, key, env);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(env) : value;
    },
  });
}
