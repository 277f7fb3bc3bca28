"""Documents with their canonical sums, from the assignment and the contract: every layer (the
summing function, the endpoint, the client) is held to the same list."""

CONTRACT_EXAMPLES = [
    ("[1,2,3,4]", "10"),
    ('{"a":6,"b":4}', "10"),
    ("[[[2]]]", "2"),
    ('{"a":{"b":4},"c":-2}', "2"),
    ('{"a":[-1,1,"dark"]}', "0"),
    ('[-1,{"a":1, "b":"light"}]', "0"),
    ("[]", "0"),
    ("{}", "0"),
    ("[0.1, 0.2]", "0.3"),
    ("[12345678901234567890123, 1]", "12345678901234567890124"),
]
