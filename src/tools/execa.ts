/**
 * execa 9 is ESM-only. Node >= 20.19 can require() ES modules natively, but jest's module
 * loader cannot, so we load execa through Node's own require (reached via
 * process.getBuiltinModule, which jest does not intercept). One place, typed as execa.
 */
type ExecaModule = typeof import('execa', { with: { 'resolution-mode': 'import' } });

const { createRequire } = process.getBuiltinModule('node:module');
const nodeRequire = createRequire(__filename);
const execaModule = nodeRequire('execa') as ExecaModule;

export const execa = execaModule.execa;
export type { ResultPromise, Result } from 'execa' with { 'resolution-mode': 'import' };

/** A long-running child (a dev server): whether it has exited, and how to stop it (SIGTERM, SIGKILL after 10 s). */
export function stopperOf(child: ResultPromiseOf): { exited: () => boolean; stop: () => Promise<void> } {
  let exited = false;
  void child.then(() => {
    exited = true;
  });
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await child;
    clearTimeout(killer);
  };
  return { exited: () => exited, stop };
}
type ResultPromiseOf = ReturnType<typeof execa>;
