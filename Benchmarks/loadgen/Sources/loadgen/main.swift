// loadgen: drives one WebSocket server with thousands of clients from one epoll thread and prints RESULT lines.
//
//   loadgen --mode fanout|echo|idle|connect-rate|pipeline-output --port P --server-pid PID
//           [--target plain|medic --token T] [--label NAME]
//           fanout:          --subscribers N --window W | --rate MSG_PER_S  --duration S --payload BYTES
//           echo:            --connections N --window W --duration S --payload BYTES
//           idle:            --connections N
//           connect-rate:    --concurrency C --duration S
//           pipeline-output: --subscribers N --lines L [--repo NAME]
import CLoadgen
import Glibc

let options: Options
do {
    options = try Options(arguments: Array(CommandLine.arguments.dropFirst()))
} catch {
    print("loadgen: \(error.text)")
    exit(2)
}
let limit = lg_raise_nofile()
if limit < 1024 { print("loadgen: RLIMIT_NOFILE is only \(limit)") }

let driver = Driver(target: options.serverTarget)
switch options.mode {
case "fanout":
    let mode = Fanout(options: options, driver: driver)
    driver.handler = mode
    mode.run()
case "echo":
    let mode = Echo(options: options, driver: driver)
    driver.handler = mode
    mode.run()
case "idle":
    let mode = Idle(options: options, driver: driver)
    driver.handler = mode
    mode.run()
case "connect-rate":
    let mode = ConnectRate(options: options, driver: driver)
    driver.handler = mode
    mode.run()
case "pipeline-output":
    let mode = PipelineOutput(options: options, driver: driver)
    driver.handler = mode
    mode.run()
default:
    print("loadgen: unknown mode \(options.mode)")
    exit(2)
}
