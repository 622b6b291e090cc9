/// Errors from building or driving a scheduler. Messages name the key, value or parameter at fault.
public enum SchedulerError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidConfigValue(key: String, value: String, allowed: [String])
    case unreadableConfig(path: String, reason: String)
    case unsupportedOption(scheduler: String, option: String)
    case unknownSchedulerName(String)
    case invalidStepCount(scheduler: String, steps: Int, reason: String)
    case invalidStrength(Double)
    case timestepsNotSet(scheduler: String)
    case timestepNotInSchedule(scheduler: String, timestep: Float)
    case stepPastEnd(scheduler: String, stepIndex: Int)
    case sizeMismatch(parameter: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .invalidConfigValue(key, value, allowed):
            return "scheduler config: '\(key)' is '\(value)'; expected one of \(allowed.joined(separator: ", "))"
        case let .unreadableConfig(path, reason):
            return "cannot read scheduler config \(path): \(reason)"
        case let .unsupportedOption(scheduler, option):
            return "\(scheduler): \(option) is not supported"
        case let .unknownSchedulerName(name):
            return "unknown scheduler '\(name)'; known: \(SchedulerName.knownNames.joined(separator: ", "))"
        case let .invalidStepCount(scheduler, steps, reason):
            return "\(scheduler): \(steps) inference steps: \(reason)"
        case let .invalidStrength(s):
            return "strength must be within 0...1, got \(s)"
        case let .timestepsNotSet(scheduler):
            return "\(scheduler): setTimesteps must be called before stepping"
        case let .timestepNotInSchedule(scheduler, t):
            return "\(scheduler): timestep \(t) is not in the current schedule"
        case let .stepPastEnd(scheduler, index):
            return "\(scheduler): step \(index) is past the end of the schedule"
        case let .sizeMismatch(parameter, expected, actual):
            return "'\(parameter)' has \(actual) elements, expected \(expected)"
        }
    }
}
