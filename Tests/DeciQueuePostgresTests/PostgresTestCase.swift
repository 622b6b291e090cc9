// A database of its own for each test, dropped afterwards, on the server DECI_TEST_POSTGRES names.
import Foundation
import Logging
import XCTest
@testable import DeciQueuePostgres

class PostgresTestCase: XCTestCase {
    private var admin: PostgresLink?
    private var database: String?
    /// The test's own database.
    var url: QueueURL?

    override func setUpWithError() throws {
        guard let text = ProcessInfo.processInfo.environment["DECI_TEST_POSTGRES"], !text.isEmpty else {
            if ProcessInfo.processInfo.environment["DECI_REQUIRE_POSTGRES"] == "1" {
                XCTFail("DECI_REQUIRE_POSTGRES=1 but DECI_TEST_POSTGRES is not set")
            }
            throw XCTSkip("no PostgreSQL: set DECI_TEST_POSTGRES=postgresql://USER@HOST:PORT/DB (tools/pg/throwaway.sh start DIR prints one)")
        }
        let base = try QueueURL(text)
        let admin = PostgresLink(url: base, logger: Logger(label: "test"))
        let name = "deci_test_\(UInt32.random(in: 0...UInt32.max))"
        _ = try admin.run("CREATE DATABASE \(unescaped: name)")
        var mine = base
        mine.database = name
        (self.admin, self.url, self.database) = (admin, mine, name)
    }

    override func tearDown() {
        if let admin, let database {
            _ = try? admin.run("DROP DATABASE IF EXISTS \(unescaped: database) WITH (FORCE)")
            admin.close()
        }
    }
}

/// Collects values from several threads.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.withLock { items.append(s) } }
    var all: [String] { lock.withLock { items } }
}
