// A node-opcua server for interop tests: an OPC UA stack nobody here wrote.
const opcua = require("node-opcua-server");
const { OPCUAServer } = opcua;
const { Variant, DataType, VariantArrayType } = require("node-opcua-variant");
const { StatusCodes } = require("node-opcua-status-code");
const readline = require("readline");
const port = parseInt(process.argv[2], 10);
(async () => {
  const server = new OPCUAServer({ port, resourcePath: "", buildInfo: { productName: "interop" },


                                   allowAnonymous: true });
  await server.initialize();
  const ns = server.engine.addressSpace.getOwnNamespace();
  const line = ns.addFolder("ObjectsFolder", { browseName: "Line1" });
  const st10 = ns.addObject({ organizedBy: line, browseName: "ST10" });
  const vars = {};
  vars.state = ns.addVariable({ componentOf: st10, browseName: "State", nodeId: "s=Line1.ST10.State",
                                dataType: "String", value: { dataType: DataType.String, value: "idle" } });
  vars.vib = ns.addVariable({ componentOf: st10, browseName: "Vibration", nodeId: "s=Line1.ST10.Vibration",
                              dataType: "Double", value: { dataType: DataType.Double, value: 0.0 } });
  vars.joints = ns.addVariable({ componentOf: st10, browseName: "Joints", nodeId: "s=Line1.R1.Joints",
                                 dataType: "Double", valueRank: 1, arrayDimensions: [6],
                                 value: { dataType: DataType.Double, arrayType: VariantArrayType.Array,
                                          value: new Float64Array(6) } });
  await server.start();
  console.log("ready " + ns.index);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (text) => {
    const cmd = JSON.parse(text);
    const v = vars[cmd.set];
    const status = cmd.status ? StatusCodes[cmd.status] : StatusCodes.Good;
    let variant;
    if (Array.isArray(cmd.value)) {
      variant = new Variant({ dataType: DataType.Double, arrayType: VariantArrayType.Array,
                              value: Float64Array.from(cmd.value) });
    } else if (typeof cmd.value === "string") {
      variant = new Variant({ dataType: DataType.String, value: cmd.value });
    } else {
      variant = new Variant({ dataType: DataType.Double, value: cmd.value });
    }
    v.setValueFromSource(variant, status, new Date());
    console.log("ok");
  });
  rl.on("close", async () => { await server.shutdown(100); process.exit(0); });
})().catch((e) => { console.error(e); process.exit(1); });
