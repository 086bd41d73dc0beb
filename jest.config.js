/**
 * One Temporal dev server and one private MariaDB per test run (test/harness), shared by
 * every test file; unit tests need neither but run in the same command.
 */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/harness/globalSetup.ts',
  globalTeardown: '<rootDir>/test/harness/globalTeardown.ts',
  testTimeout: 180000,
  maxWorkers: 1,
  verbose: true,
  reporters: ['default', '<rootDir>/test/harness/summaryReporter.js'],
};
