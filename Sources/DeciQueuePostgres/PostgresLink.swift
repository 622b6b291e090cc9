// One connection to the database, reconnected with backoff: the only place that talks to
// PostgresNIO's connection. Callers block on a query (the HTTP layer's queue calls are
// synchronous); none runs on an event-loop thread, so the wait cannot deadlock the connection.
//
// While the database is down every call fails at once with QueueError.unavailable (never hangs,
// never crashes): the first failure starts a backoff (0.1 s doubling to 5 s) during which no
// connection is tried. No state lives only in the connection, so a reconnect loses nothing but
// notifications, which callers make up for by polling (onReconnect).
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

final class PostgresLink: @unchecked Sendable {
    let url: QueueURL
    let logger: Logger
    private let eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()
    private let lock = NSLock()
    private var connection: PostgresConnection?
    private var connecting: EventLoopFuture<PostgresConnection>?
    private var retryAt = Date.distantPast
    private var backoff = 0.1
    private var connectionCount = 0
    private var closed = false
    /// Channels to LISTEN on after every (re)connect, and who hears their notifications.
    private let channels: [String]
    private let onNotify: @Sendable (_ channel: String, _ payload: String) -> Void
    /// Called after each reconnect: notifications sent while disconnected were lost.
    private let onReconnect: @Sendable () -> Void

    init(url: QueueURL, logger: Logger, listen channels: [String] = [],
         onNotify: @escaping @Sendable (String, String) -> Void = { _, _ in }, onReconnect: @escaping @Sendable () -> Void = {}) {
        (self.url, self.logger, self.channels, self.onNotify, self.onReconnect) = (url, logger, channels, onNotify, onReconnect)
    }

    /// Runs one statement (a single statement is its own transaction) and collects its rows.
    func run(_ query: PostgresQuery) throws(QueueError) -> PostgresQueryResult {
        do { return try future(query).wait() } catch { throw classify(error) }
    }

    /// Whether a connection is open now (no round trip).
    var isConnected: Bool { lock.withLock { connection.map { !$0.isClosed } ?? false } }

    func close() {
        let c: PostgresConnection? = lock.withLock {
            closed = true
            defer { connection = nil }
            return connection
        }
        let closing: EventLoopFuture<Void>? = c?.close()
        try? closing?.wait()
    }

    // MARK: - Internals

    private func future(_ query: PostgresQuery) -> EventLoopFuture<PostgresQueryResult> {
        let logger = self.logger
        return connectionFuture().flatMap { c in c.query(query, logger: logger) }
    }

    private func connectionFuture() -> EventLoopFuture<PostgresConnection> {
        lock.lock()
        if closed {
            lock.unlock()
            return eventLoop.makeFailedFuture(QueueError.unavailable("the queue is closed"))
        }
        if let c = connection, !c.isClosed {
            lock.unlock()
            return eventLoop.makeSucceededFuture(c)
        }
        connection = nil
        if let pending = connecting {
            lock.unlock()
            return pending
        }
        let wait = retryAt.timeIntervalSinceNow
        if wait > 0 {
            lock.unlock()
            return eventLoop.makeFailedFuture(QueueError.unavailable("cannot reach \(url); next try in \(String(format: "%.1f", wait)) s"))
        }
        connectionCount += 1
        let id = connectionCount
        let (channels, onNotify, logger) = (self.channels, self.onNotify, self.logger)
        let pending = PostgresConnection.connect(on: eventLoop, configuration: url.configuration, id: id, logger: logger)
            .flatMap { c -> EventLoopFuture<PostgresConnection> in
                // Listen before anything else runs on the connection, so no notification is missed.
                let listens = channels.map { channel in
                    c.addListener(channel: channel) { _, message in onNotify(message.channel, message.payload) }
                    return c.query("LISTEN \(unescaped: channel)", logger: logger).map { _ in () }
                }
                return EventLoopFuture.andAllSucceed(listens, on: c.eventLoop).map { c }.flatMapError { error in
                    let closing: EventLoopFuture<Void> = c.close()
                    return closing.flatMapThrowing { _ -> PostgresConnection in throw error }
                }
            }
        connecting = pending
        lock.unlock()
        pending.whenComplete { [weak self] result in
            guard let self else { return }
            self.lock.lock()
            self.connecting = nil
            switch result {
            case let .success(c):
                self.connection = c
                self.backoff = 0.1
                self.retryAt = .distantPast
            case .failure:
                self.retryAt = Date().addingTimeInterval(self.backoff)
                self.backoff = min(self.backoff * 2, 5)
            }
            self.lock.unlock()
            if case .success = result, id > 1 {
                self.logger.info("reconnected to \(self.url)")
                self.onReconnect()
            }
        }
        return pending
    }

    /// Maps a failure to a QueueError; connection trouble also drops the connection, so the next
    /// call reconnects.
    private func classify(_ error: any Error) -> QueueError {
        if let e = error as? QueueError { return e }
        if let e = error as? PSQLError, e.code == .server {
            let state = e.serverInfo?[.sqlState] ?? ""
            let message = e.serverInfo?[.message] ?? "\(e)"
            // Class 08 (connection exception) and 57 (operator intervention: shutdown, admin
            // termination) mean the server went away, not that the statement was wrong.
            if state.hasPrefix("08") || state.hasPrefix("57") {
                dropConnection()
                return .unavailable(message)
            }
            return .server("\(message) (SQLSTATE \(state))")
        }
        dropConnection()
        return .unavailable(String(describing: error))
    }

    private func dropConnection() {
        let c: PostgresConnection? = lock.withLock {
            defer { connection = nil }
            return connection
        }
        // The future-returning close (there is an async one too); nobody waits for it.
        let _: EventLoopFuture<Void>? = c?.close()
    }
}
