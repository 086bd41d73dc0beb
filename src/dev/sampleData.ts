/**
 * A small "shop" database that exercises what a backup must keep: utf8mb4 text, JSON,
 * BLOBs, NULLs, a view, a procedure, a function, a trigger and an event. Used by
 * `dbops dev` and the tests; `orders` scales for benchmarks.
 */
import type { Connection } from 'mysql2/promise';
import { quoteIdentifier } from '../domain/identifiers';
import type { Product } from '../domain/manifest';

export interface SampleOptions {
  database?: string;
  customers?: number;
  orders?: number;
}

export async function seedSampleDatabase(conn: Connection, options: SampleOptions = {}): Promise<void> {
  const db = quoteIdentifier(options.database ?? 'shop');
  const customers = options.customers ?? 200;
  const orders = options.orders ?? 2000;
  const statements = [
    `CREATE DATABASE IF NOT EXISTS ${db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    `CREATE TABLE IF NOT EXISTS ${db}.customers (
       id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
       name VARCHAR(100) NOT NULL,
       email VARCHAR(190) NULL,
       city VARCHAR(60) NULL,
       profile JSON NULL,
       avatar BLOB NULL,
       created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
       UNIQUE KEY uk_email (email)
     ) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${db}.orders (
       id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
       customer_id INT UNSIGNED NOT NULL,
       status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
       total DECIMAL(12,2) NOT NULL,
       note TEXT NULL,
       created_at DATETIME NOT NULL,
       KEY idx_customer (customer_id),
       KEY idx_created (created_at)
     ) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${db}.audit_log (
       id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
       order_id BIGINT UNSIGNED NOT NULL,
       action VARCHAR(20) NOT NULL,
       at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
     ) ENGINE=InnoDB`,
    `CREATE OR REPLACE VIEW ${db}.customer_totals AS
       SELECT c.id, c.name, COUNT(o.id) AS orders, COALESCE(SUM(o.total), 0) AS total
       FROM ${db}.customers c LEFT JOIN ${db}.orders o ON o.customer_id = c.id GROUP BY c.id, c.name`,
    `DROP TRIGGER IF EXISTS ${db}.orders_audit`,
    `CREATE TRIGGER ${db}.orders_audit AFTER UPDATE ON ${db}.orders FOR EACH ROW
       INSERT INTO ${db}.audit_log (order_id, action) VALUES (NEW.id, CONCAT('status:', NEW.status))`,
    `DROP PROCEDURE IF EXISTS ${db}.cancel_order`,
    `CREATE PROCEDURE ${db}.cancel_order(IN p_id BIGINT)
       UPDATE ${db}.orders SET status = 'cancelled' WHERE id = p_id`,
    `DROP FUNCTION IF EXISTS ${db}.order_tax`,
    `CREATE FUNCTION ${db}.order_tax(p_total DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC
       RETURN ROUND(p_total * 0.08, 2)`,
    `DROP EVENT IF EXISTS ${db}.purge_audit`,
    `CREATE EVENT ${db}.purge_audit ON SCHEDULE EVERY 1 DAY DISABLE
       DO DELETE FROM ${db}.audit_log WHERE at < NOW() - INTERVAL 90 DAY`,
  ];
  for (const sql of statements) await conn.query(sql);

  const [[existing]] = (await conn.query(`SELECT COUNT(*) AS n FROM ${db}.customers`)) as unknown as [[{ n: number }]];
  if (Number(existing.n) > 0) return;

  const cities = ['Zürich', 'São Paulo', '東京', 'Kraków', 'Reykjavík', null];
  const customerRows: unknown[][] = [];
  for (let i = 1; i <= customers; i++) {
    customerRows.push([
      i % 7 === 0 ? `Ünïcødé 客户 ${i} 🚀` : `Customer ${i}`,
      i % 11 === 0 ? null : `c${i}@example.com`,
      cities[i % cities.length],
      i % 5 === 0 ? null : JSON.stringify({ tier: i % 3, tags: ['a', `t${i % 4}`], quote: `it's "${i}"` }),
      i % 4 === 0 ? Buffer.from([0, 1, 2, 255, 39, 92, 10, 13, i % 256]) : null,
    ]);
  }
  await conn.query(`INSERT INTO ${db}.customers (name, email, city, profile, avatar) VALUES ?`, [customerRows]);

  const statuses = ['new', 'paid', 'shipped', 'cancelled'];
  const batch = 5000;
  for (let start = 0; start < orders; start += batch) {
    const rows: unknown[][] = [];
    for (let i = start; i < Math.min(orders, start + batch); i++) {
      const day = new Date(Date.UTC(2026, 0, 1) + (i % 300) * 86_400_000 + (i % 86_400) * 1000);
      rows.push([
        1 + (i % customers),
        statuses[i % statuses.length],
        ((i * 37) % 100_000) / 100 + 1,
        i % 9 === 0 ? null : `order ${i}; note with 'quotes', (parens) and \\backslash\\`,
        day.toISOString().slice(0, 19).replace('T', ' '),
      ]);
    }
    await conn.query(`INSERT INTO ${db}.orders (customer_id, status, total, note, created_at) VALUES ?`, [rows]);
  }
}

/**
 * The least-privileged account dbops needs for logical backups and binlog copies. MySQL:
 * BACKUP_ADMIN lets the dump hold LOCK INSTANCE FOR BACKUP (no DDL while it runs) and read
 * performance_schema.log_status; REPLICATION CLIENT reads SHOW BINARY LOG STATUS.
 */
export async function createBackupUser(conn: Connection, user: string, password: string, host = '%', product: Product = 'mariadb'): Promise<void> {
  await conn.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [user, host, password]);
  await conn.query('ALTER USER ?@? IDENTIFIED BY ?', [user, host, password]);
  const privileges =
    product === 'mariadb'
      ? 'SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD, PROCESS, BINLOG MONITOR, REPLICATION SLAVE, REPLICA MONITOR'
      : 'SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD, PROCESS, REPLICATION CLIENT, REPLICATION SLAVE, BACKUP_ADMIN';
  await conn.query(`GRANT ${privileges} ON *.* TO ?@?`, [user, host]);
}

/**
 * The restore administrator: it creates and drops its own target databases, creates for each
 * restore an account that can write only that restore's target (and grants it what a binlog
 * replay needs, hence WITH GRANT OPTION), creates views, triggers and routines with their
 * original DEFINERs, and renames tables for a swap. Keep it separate from the read-only
 * backup account.
 */
export async function createRestoreUser(conn: Connection, user: string, password: string, host = '%'): Promise<void> {
  await conn.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [user, host, password]);
  await conn.query('ALTER USER ?@? IDENTIFIED BY ?', [user, host, password]);
  await conn.query('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', [user, host]);
}
