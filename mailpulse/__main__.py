from mailpulse import console_main

console_main()
