// A1111's sampler and schedule names, and the engine scheduler each pair runs. A1111 names a
// sampler ("DPM++ 2M") and a schedule ("Karras") separately, or both in one legacy name
// ("DPM++ 2M Karras"); "Automatic" is the sampler's own default schedule. Only pairs the engine
// really has are offered; anything else is refused naming the field (A1111 itself falls back to
// another sampler silently, which gives a different image than the one asked for).
import Foundation

enum A1111Samplers {
    struct Sampler {
        var name: String
        var aliases: [String]
        /// The schedule "Automatic" means for this sampler in A1111.
        var automatic: String
        /// Engine scheduler name per schedule this engine has for the sampler.
        var engine: [String: String]
    }

    struct Schedule {
        var name: String
        var label: String
        var aliases: [String]
        var defaultRho: Double
    }

    static let samplers: [Sampler] = [
        Sampler(name: "DPM++ 2M", aliases: ["k_dpmpp_2m"], automatic: "karras",
                engine: ["uniform": "DPM++ 2M", "karras": "DPM++ 2M Karras"]),
        Sampler(name: "DPM++ 2M SDE", aliases: ["k_dpmpp_2m_sde_ka"], automatic: "exponential",
                engine: ["uniform": "DPM++ 2M SDE", "karras": "DPM++ 2M SDE Karras"]),
        Sampler(name: "Euler a", aliases: ["k_euler_a", "k_euler_ancestral"], automatic: "uniform", engine: ["uniform": "Euler a"]),
        Sampler(name: "Euler", aliases: ["k_euler"], automatic: "uniform", engine: ["uniform": "Euler"]),
        Sampler(name: "LMS", aliases: ["k_lms"], automatic: "uniform", engine: ["uniform": "LMS", "karras": "LMS Karras"]),
        Sampler(name: "Heun", aliases: ["k_heun"], automatic: "uniform", engine: ["uniform": "Heun"]),
        Sampler(name: "DDIM", aliases: [], automatic: "uniform", engine: ["uniform": "DDIM"]),
        Sampler(name: "PLMS", aliases: [], automatic: "uniform", engine: ["uniform": "PLMS"]),
        Sampler(name: "UniPC", aliases: [], automatic: "uniform", engine: ["uniform": "UniPC"]),
        Sampler(name: "LCM", aliases: ["k_lcm"], automatic: "uniform", engine: ["uniform": "LCM"]),
    ]

    /// "uniform" here is the checkpoint's own timestep spacing (for DeciDiffusion, its trailing DDIM
    /// schedule), which is what A1111's uniform schedule amounts to for these samplers.
    static let schedules: [Schedule] = [
        Schedule(name: "automatic", label: "Automatic", aliases: [], defaultRho: -1),
        Schedule(name: "uniform", label: "Uniform", aliases: [], defaultRho: -1),
        Schedule(name: "karras", label: "Karras", aliases: [], defaultRho: 7),
    ]

    /// Every schedule A1111 knows, so a name we lack is refused as unsupported, not as unknown.
    static let a1111Schedules = ["automatic", "uniform", "karras", "exponential", "polyexponential", "sgm_uniform",
                                 "kl_optimal", "align_your_steps", "simple", "normal", "ddim", "beta"]

    /// The engine scheduler for a request's `sampler_name` (or `sampler_index`) and `scheduler`,
    /// and the names to report. nil sampler: the checkpoint's own scheduler (`fallback`, its A1111
    /// name if it has one).
    static func resolve(sampler rawSampler: String?, samplerField: String, schedule rawSchedule: String?,
                        checkpointDefault fallback: String?) throws(FieldError) -> (engine: String?, sampler: String, schedule: String) {
        guard var name = rawSampler?.trimmingCharacters(in: .whitespaces), !name.isEmpty else {
            return (nil, fallback ?? "Automatic", "Automatic")
        }
        var schedule = rawSchedule?.trimmingCharacters(in: .whitespaces).lowercased()
        if schedule?.isEmpty ?? false { schedule = nil }
        // A legacy combined name: "DPM++ 2M Karras" = sampler "DPM++ 2M" + schedule karras.
        if lookup(name) == nil, let space = name.lastIndex(of: " ") {
            let suffix = name[name.index(after: space)...].lowercased()
            if a1111Schedules.contains(suffix) || schedules.contains(where: { $0.label.lowercased() == suffix }), lookup(String(name[..<space])) != nil {
                if schedule == nil || schedule == "automatic" { schedule = suffix }
                name = String(name[..<space])
            }
        }
        guard let sampler = lookup(name) else {
            throw FieldError(field: samplerField, "unknown sampler \"\(name)\"; this engine has \(samplers.map(\.name).joined(separator: ", "))")
        }
        let wanted = schedule.map { s in schedules.first { $0.label.lowercased() == s || $0.name == s }?.name ?? s } ?? "automatic"
        let effective = wanted == "automatic" ? sampler.automatic : wanted
        guard let engine = sampler.engine[effective] else {
            let offered = sampler.engine.keys.sorted().map { s in schedules.first { $0.name == s }?.label ?? s }.joined(separator: ", ")
            let what = wanted == "automatic" ? "its automatic schedule (\(sampler.automatic))" : "schedule \"\(rawSchedule ?? wanted)\""
            throw FieldError(field: "scheduler", "\(sampler.name) with \(what) is not available in this engine; use \(offered)")
        }
        // A1111 reports the sampler's own default schedule as Automatic.
        let label = effective == sampler.automatic ? "Automatic" : (schedules.first { $0.name == effective }?.label ?? effective)
        return (engine, sampler.name, label)
    }

    static func lookup(_ name: String) -> Sampler? {
        let n = name.lowercased()
        return samplers.first { $0.name.lowercased() == n || $0.aliases.contains(n) }
    }

    /// The A1111 sampler name of a checkpoint's scheduler class, when running that sampler by name
    /// gives exactly the checkpoint's own scheduler (its config carries every setting).
    static func name(forClass className: String?) -> String? {
        switch className {
        case "DDIMScheduler": "DDIM"
        case "PNDMScheduler": "PLMS"
        case "EulerDiscreteScheduler": "Euler"
        case "EulerAncestralDiscreteScheduler": "Euler a"
        case "HeunDiscreteScheduler": "Heun"
        case "UniPCMultistepScheduler": "UniPC"
        case "LCMScheduler": "LCM"
        default: nil
        }
    }
}
