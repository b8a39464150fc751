#include <iostream>
int main() { std::cout << "stemtwin " << STEMTWIN_VERSION << "\n"; return 0; }
