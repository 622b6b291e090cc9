import XCTest

@testable import DeciServer

/// What `decidiffusion serve` refuses before it binds.
final class ServerSettingsTests: XCTestCase {
    func testLoopbackAddresses() {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]"] {
            XCTAssertTrue(ServerSettings.isLoopback(host), host)
        }
        for host in ["0.0.0.0", "::", "192.168.1.2", "127.0.0.1.example.com", "127.0.0", "10.0.0.1", "example.com", "128.0.0.1"] {
            XCTAssertFalse(ServerSettings.isLoopback(host), host)
        }
    }

    func testANetworkAddressNeedsAKeyOrAnExplicitOptOut() throws {
        XCTAssertNoThrow(try ServerSettings().validate())
        XCTAssertThrowsError(try ServerSettings(host: "0.0.0.0").validate()) {
            XCTAssertTrue("\($0)".contains("--host 0.0.0.0") && "\($0)".contains("--api-key"), "\($0)")
        }
        XCTAssertNoThrow(try ServerSettings(host: "0.0.0.0", apiKey: "k").validate())
        XCTAssertNoThrow(try ServerSettings(host: "0.0.0.0", allowUnauthenticated: true).validate())
        // An empty key is no key.
        XCTAssertThrowsError(try ServerSettings(host: "0.0.0.0", apiKey: "").validate())
    }

    func testPortBodyLimitAndCORSOriginAreChecked() {
        XCTAssertThrowsError(try ServerSettings(port: 70000).validate()) { XCTAssertTrue("\($0)".hasPrefix("--port")) }
        XCTAssertThrowsError(try ServerSettings(maxBodyBytes: 0).validate()) { XCTAssertTrue("\($0)".hasPrefix("--max-body-mb")) }
        XCTAssertNoThrow(try ServerSettings(corsOrigin: "http://localhost:3000").validate())
        XCTAssertNoThrow(try ServerSettings(corsOrigin: "https://example.com").validate())
        for origin in ["*", "localhost:3000", "ftp://example.com", "https://example.com/path", "https://example.com/?q=1"] {
            XCTAssertThrowsError(try ServerSettings(corsOrigin: origin).validate(), origin) {
                XCTAssertTrue("\($0)".hasPrefix("--cors-origin"), "\($0)")
            }
        }
    }
}
