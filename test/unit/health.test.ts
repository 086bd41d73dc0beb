import { parseReplicaStatus, replicaBackupRefusal, replicaProblem } from '../../src/domain/health';
import { DbopsMetrics } from '../../src/metrics/metrics';

describe('SHOW REPLICA STATUS, either product', () => {
  test("MySQL's Replica_/Source_ columns and MariaDB's Slave_/Master_ ones give the same shape", () => {
    const mysql = parseReplicaStatus({ Source_Host: '10.0.0.1', Source_Port: 3306, Replica_IO_Running: 'Yes', Replica_SQL_Running: 'Yes', Seconds_Behind_Source: 42, Last_IO_Errno: 0, Last_SQL_Errno: 0, Last_IO_Error: '', Last_SQL_Error: '' });
    const mariadb = parseReplicaStatus({ Master_Host: '10.0.0.1', Master_Port: 3306, Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes', Seconds_Behind_Master: '42', Last_IO_Errno: '0', Last_SQL_Errno: '0' });
    expect(mysql).toEqual({ source: '10.0.0.1:3306', ioRunning: true, sqlRunning: true, lagSeconds: 42, lastErrno: 0 });
    expect(mariadb).toEqual(mysql);
    expect(parseReplicaStatus(undefined)).toBeNull();
  });

  test('a stopped SQL thread: no lag, its error first; the backup refusal says why', () => {
    const broken = parseReplicaStatus({ Master_Host: 'db1', Master_Port: 3306, Slave_IO_Running: 'Yes', Slave_SQL_Running: 'No', Seconds_Behind_Master: null, Last_IO_Errno: 0, Last_SQL_Errno: 1062, Last_SQL_Error: "Duplicate entry '7' for key 'PRIMARY'" });
    expect(broken).toMatchObject({ sqlRunning: false, lagSeconds: null, lastErrno: 1062 });
    // The number only: the message quotes the row's values.
    expect(replicaProblem(broken!, 300)).toBe('its SQL thread is not running (error 1062; SHOW REPLICA STATUS on the replica says more)');
    const late = parseReplicaStatus({ Master_Host: 'db1', Master_Port: 3306, Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes', Seconds_Behind_Master: 900 });
    expect(replicaProblem(late!, 300)).toBe('it is 900 s behind its source (more than 300 s)');
    expect(replicaProblem(late!, 1000)).toBeNull();
  });

  test('a backup of a replica: refused when broken, too far behind or not logging what it applies', () => {
    const ok = parseReplicaStatus({ Source_Host: 'db1', Source_Port: 3306, Replica_IO_Running: 'Yes', Replica_SQL_Running: 'Yes', Seconds_Behind_Source: 3 })!;
    expect(replicaBackupRefusal(ok, true, 300)).toBeNull();
    expect(replicaBackupRefusal(ok, false, 300)).toMatch(/^this server is a replica of db1:3306 that does not write what it applies to its own binary log \(log_slave_updates \/ log_replica_updates is off\)/);
    expect(replicaBackupRefusal({ ...ok, lagSeconds: 301 }, true, 300)).toBe(
      'this server is a replica of db1:3306 and it is 301 s behind its source (more than 300 s): a backup of it would not hold what the source holds. Fix replication (SHOW REPLICA STATUS) or back up the source',
    );
    expect(replicaBackupRefusal({ ...ok, ioRunning: false, lastErrno: 2003 }, true, 300)).toMatch(/its IO thread is not running \(error 2003; SHOW REPLICA STATUS on the replica says more\)/);
  });
});

describe('health metrics', () => {
  const health = { connections: 170, maxConnections: 200, sleeping: 120, running: 3, abortedConnects: 9, replica: { source: 'db1:3306', ioRunning: true, sqlRunning: false, lagSeconds: null, lastErrno: 1062 } };
  test('a read server sets every gauge; an unreachable one is up 0 with no stale values left', async () => {
    const m = new DbopsMetrics();
    m.fromHealth('shop', health);
    let text = await m.registry.metrics();
    expect(text).toContain('dbops_mysql_up{cluster="shop"} 1');
    expect(text).toContain('dbops_mysql_connections_sleeping{cluster="shop"} 120');
    expect(text).toContain('dbops_replica_sql_running{cluster="shop",source="db1:3306"} 0');
    expect(text).toContain('dbops_replica_last_error_number{cluster="shop",source="db1:3306"} 1062');
    expect(text).not.toContain('dbops_replica_lag_seconds{'); // unknown while the thread is stopped
    m.fromHealth('shop', null);
    text = await m.registry.metrics();
    expect(text).toContain('dbops_mysql_up{cluster="shop"} 0');
    expect(text).not.toContain('dbops_mysql_connections{cluster="shop"}');
    expect(text).not.toContain('dbops_replica_sql_running{');
  });
});
