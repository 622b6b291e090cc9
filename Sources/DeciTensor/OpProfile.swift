import Foundation
import Synchronization

/// Wall-clock totals of everything measured while enabled (`bench --profile`, or `DECI_PROFILE=1`
/// in the environment from the start): each op the op layer runs, and each module a model times
/// around its ops (`measure(module:)`). Off by default: then each op pays one atomic load. Kernels
/// run synchronously on the CPU backend, so wall time per call is the op's or module's time.
public enum OpProfile {
    /// What a label times. Modules contain ops, so each category has its own total.
    public enum Category: String, Sendable, CaseIterable {
        case module, op
    }

    private struct Key: Hashable {
        let category: Category
        let label: String
    }

    private static let on = Atomic<Bool>(ProcessInfo.processInfo.environment["DECI_PROFILE"] == "1")
    private static let totals = Mutex<[Key: (count: Int, seconds: Double)]>([:])

    public static var enabled: Bool {
        get { on.load(ordering: .relaxed) }
        set { on.store(newValue, ordering: .relaxed) }
    }

    @inline(__always)
    static func measure<T>(_ name: @autoclosure () -> String, _ body: () -> T) -> T {
        record(.op, name(), body)
    }

    /// Times `body` as one call of the module `label` (e.g. `resnet 640ch 32x32`).
    @inline(__always)
    public static func measure<T>(module label: @autoclosure () -> String, _ body: () -> T) -> T {
        record(.module, label(), body)
    }

    @inline(__always)
    private static func record<T>(_ category: Category, _ label: @autoclosure () -> String, _ body: () -> T) -> T {
        guard enabled else { return body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let key = Key(category: category, label: label())
        totals.withLock { t in
            let old = t[key] ?? (0, 0)
            t[key] = (old.count + 1, old.seconds + dt)
        }
        return r
    }

    public static func reset() { totals.withLock { $0 = [:] } }

    /// (op, calls, seconds) of the ops, slowest first.
    public static var snapshot: [(op: String, calls: Int, seconds: Double)] {
        snapshot(.op).map { ($0.label, $0.calls, $0.seconds) }
    }

    /// (label, calls, seconds) of one category, slowest first.
    public static func snapshot(_ category: Category) -> [(label: String, calls: Int, seconds: Double)] {
        totals.withLock { t in t.filter { $0.key.category == category }.map { ($0.key.label, $0.value.count, $0.value.seconds) } }
            .sorted { $0.seconds > $1.seconds }
    }

    /// A table per category that recorded anything (modules, then ops), with each label's share of
    /// its category's total.
    public static func report() -> String {
        let tables = Category.allCases.compactMap { c in snapshot(c).isEmpty ? nil : report(c) }
        return tables.isEmpty ? "(nothing profiled: enable OpProfile or set DECI_PROFILE=1)" : tables.joined(separator: "\n\n")
    }

    /// The table of one category.
    public static func report(_ category: Category) -> String {
        let rows = snapshot(category)
        let total = rows.reduce(0) { $0 + $1.seconds }
        guard total > 0 else { return "(no \(category.rawValue)s recorded)" }
        var lines = [String(format: "%-34@ %7@ %9@ %6@", category.rawValue as NSString, "calls" as NSString, "seconds" as NSString, "share" as NSString)]
        for r in rows {
            lines.append(String(format: "%-34@ %7d %9.3f %5.1f%%", r.label as NSString, r.calls, r.seconds, 100 * r.seconds / total))
        }
        lines.append(String(format: "%-34@ %7@ %9.3f", "total" as NSString, "" as NSString, total))
        return lines.joined(separator: "\n")
    }
}
