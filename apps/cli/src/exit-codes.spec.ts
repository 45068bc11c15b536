import { ConfigError } from '@cairn/config';
import { CommanderError } from 'commander';
import { ExitCode, NotFoundError, UsageError, VerifyFailedError, exitCodeFor, isConnectionError, isRetryable } from './exit-codes';
import { TsvRowError } from './tsv';

const coded = (code: string, extra: object = {}) => Object.assign(new Error(code), { code, ...extra });

describe('exit codes', () => {
  it('maps each error kind to its documented code', () => {
    expect(exitCodeFor(new NotFoundError('k'))).toBe(ExitCode.notFound);
    expect(exitCodeFor(new UsageError('bad'))).toBe(ExitCode.usage);
    expect(exitCodeFor(new ConfigError('bad config'))).toBe(ExitCode.usage);
    expect(exitCodeFor(new TsvRowError(3, 'empty key'))).toBe(ExitCode.usage);
    expect(exitCodeFor(new CommanderError(1, 'commander.unknownOption', 'x'))).toBe(ExitCode.usage);
    expect(exitCodeFor(coded('ENOENT'))).toBe(ExitCode.usage);
    expect(exitCodeFor(coded('ECONNREFUSED'))).toBe(ExitCode.unavailable);
    expect(exitCodeFor(coded('UNAVAILABLE', { retryable: true }))).toBe(ExitCode.unavailable);
    expect(exitCodeFor(coded('TIMEOUT'))).toBe(ExitCode.unavailable);
    expect(exitCodeFor(new VerifyFailedError('x'))).toBe(ExitCode.verifyFailed);
    expect(exitCodeFor(coded('VALUE_TOO_LARGE', { retryable: false }))).toBe(ExitCode.serverError);
    expect(exitCodeFor(new Error('bug'))).toBe(ExitCode.serverError);
  });
  it('tells retryable errors from connection errors', () => {
    expect(isRetryable(coded('UNAVAILABLE', { retryable: true }))).toBe(true);
    expect(isConnectionError(coded('UNAVAILABLE', { retryable: true }))).toBe(false);
    expect(isRetryable(coded('ECONNRESET'))).toBe(true);
    expect(isConnectionError(coded('ECONNRESET'))).toBe(true);
    expect(isConnectionError(coded('CONNECTION_CLOSED'))).toBe(true);
    expect(isRetryable(coded('KEY_TOO_LARGE'))).toBe(false);
    expect(isRetryable('string')).toBe(false);
  });
});
