import Logging
import XCTest
@testable import DeciQueuePostgres

final class QueueURLTests: XCTestCase {
    func testParsesUserHostPortDatabase() throws {
        let u = try QueueURL("postgresql://deci:secret@db.example:6543/jobs")
        XCTAssertEqual(u.user, "deci")
        XCTAssertEqual(u.password, "secret")
        XCTAssertEqual(u.host, "db.example")
        XCTAssertEqual(u.port, 6543)
        XCTAssertEqual(u.database, "jobs")
        XCTAssertFalse(u.description.contains("secret"), "the password stays out of logs")
    }

    func testUnixSocketDirectory() throws {
        let u = try QueueURL("postgresql://deci@/jobs?host=/tmp/pg")
        XCTAssertEqual(u.socketDirectory, "/tmp/pg")
        XCTAssertEqual(u.port, 5432)
    }

    func testBadURLsNameWhatIsMissing() {
        for (text, part) in [("mysql://a@b/c", "postgresql://"), ("postgresql://host/db", "user"), ("postgresql://u@host", "database")] {
            XCTAssertThrowsError(try QueueURL(text)) { error in
                XCTAssertTrue("\(error)".contains(part), "\(text): \(error)")
            }
        }
    }

    func testUnreachableDatabaseFailsFastAsUnavailable() throws {
        // Port 9 (discard) on loopback: nothing listens, the connection is refused.
        let link = PostgresLink(url: try QueueURL("postgresql://deci@127.0.0.1:9/deci"), logger: Logger(label: "test"))
        let start = Date()
        for _ in 0..<3 {
            XCTAssertThrowsError(try link.run("SELECT 1")) { error in
                guard case .unavailable = error as? QueueError else { return XCTFail("\(error)") }
            }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }
}
